import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { getContainerRuntimeClient, type ContainerRuntimeClient } from 'testcontainers'
import type { NodeConfig } from '../../nodes/config.ts'
import { CONTROL_TOKEN_FLAG } from '../../nodes/control/token.ts'
import { tarStream, type TarEntry } from './tar.ts'

/**
 * Builds the chiral-sim node image WITHOUT a registry: a root filesystem holding this machine's Node binary, the
 * shared libraries it links, nodes/ and the production node_modules that nodes/ imports, streamed to the engine
 * with `docker import`. Nothing is pulled, so it works offline and against a remote DOCKER_HOST alike.
 *
 * The tag is a hash of every file in the image, so building is idempotent: same files, same tag, nothing to do.
 * Requires a Linux host whose architecture matches the engine's (the binary is copied, not cross-built); elsewhere
 * use docker/Dockerfile, which starts FROM node:24-slim.
 *
 *   node sim/backends/docker-image.ts          # builds if needed, prints the node image tag
 */

export const NODE_IMAGE_REPO = 'chiral-sim-node'
export const PAUSE_IMAGE_REPO = 'chiral-sim-pause'
export const CONTROL_PORT = 7070
export const LIBP2P_PORT = 4001
export const NODE_BINARY_IN_IMAGE = '/usr/local/bin/node'
export const NODE_MAIN_IN_IMAGE = '/app/nodes/main.ts'
/** Printed by the pause container once it runs: testcontainers waits for it (the image has no shell to probe with). */
export const PAUSE_READY = 'PAUSE_READY'

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** The image's own defaults, so that `docker run <tag> --config '…'` works by hand too. */
const NODE_IMAGE_CHANGES = [
  `ENTRYPOINT ["${NODE_BINARY_IN_IMAGE}", "${NODE_MAIN_IN_IMAGE}"]`,
  'WORKDIR /app',
  'ENV NODE_ENV=production',
  `ENV CHIRAL_CONTROL_HOST=0.0.0.0`,
  `ENV CHIRAL_CONTROL_PORT=${CONTROL_PORT}`,
  `EXPOSE ${CONTROL_PORT}/tcp`,
  `EXPOSE ${LIBP2P_PORT}/tcp`
]

/** The node image's arguments: its config, the token file's path inside the container, control on all addresses. */
export function nodeImageArgs (config: NodeConfig, tokenFile: string): string[] {
  return ['--config', JSON.stringify(config), CONTROL_TOKEN_FLAG, tokenFile, '--control-host', '0.0.0.0', '--control-port', String(CONTROL_PORT)]
}

export interface EnsureImageOptions {
  /** Default: the running Node (it runs the harness, so it runs the nodes). */
  nodeBinary?: string
  repoRoot?: string
  client?: ContainerRuntimeClient
  /** Progress lines for a human; default silent. */
  log?: (line: string) => void
}

export interface EnsuredImage {
  tag: string
  /** False when the tag already existed: a test must only remove images it built. */
  built: boolean
}

export async function ensureNodeImage (options: EnsureImageOptions = {}): Promise<EnsuredImage> {
  const client = options.client ?? await getContainerRuntimeClient()
  assertSameArchitecture(client)
  const entries = nodeRootfs(options.repoRoot ?? REPO_ROOT, options.nodeBinary ?? process.execPath)
  const tag = `${NODE_IMAGE_REPO}:${await hashEntries(entries, NODE_IMAGE_CHANGES)}`
  return await importIfMissing(client, tag, entries, NODE_IMAGE_CHANGES, options.log)
}

/**
 * The network-namespace holder each node container joins (as a Kubernetes pod's pause container): it keeps the
 * node's IP and published ports while the node container is killed and replaced, so a killed bootstrap refuses
 * connections like a dead process on a live server, and its restart comes back at the same address.
 *
 * On x86-64 it is a static program of 165 bytes that prints PAUSE_READY and sleeps forever; elsewhere undefined, and
 * the backend runs the node image with a sleeping script instead.
 */
export async function ensurePauseImage (options: Pick<EnsureImageOptions, 'client' | 'log'> = {}): Promise<EnsuredImage | undefined> {
  const client = options.client ?? await getContainerRuntimeClient()
  if (!['x86_64', 'amd64'].includes(client.info.containerRuntime.architecture)) return undefined
  const entries: TarEntry[] = [{ path: 'pause', type: 'file', mode: 0o755, content: pauseElf() }]
  const changes = ['ENTRYPOINT ["/pause"]']
  const tag = `${PAUSE_IMAGE_REPO}:${await hashEntries(entries, changes)}`
  return await importIfMissing(client, tag, entries, changes, options.log)
}

export const TOXIPROXY_IMAGE_REPO = 'chiral-sim-toxiproxy'
export const TOXIPROXY_BINARY_IN_IMAGE = '/usr/local/bin/toxiproxy-server'

/**
 * Toxiproxy for runs whose nodes live on other engines (swarm mode): the toxiproxy-server binary this machine has
 * (.toxiproxy/bin, built by scripts/setup-toxiproxy.sh) and Node, each with the shared libraries it links, so that
 * a small Node front can guard Toxiproxy's unauthenticated API with a token. Registry-free, as the node image.
 */
export async function ensureToxiproxyImage (options: Pick<EnsureImageOptions, 'client' | 'log' | 'nodeBinary'> & { toxiproxyBinary: string }): Promise<EnsuredImage> {
  const client = options.client ?? await getContainerRuntimeClient()
  assertSameArchitecture(client)
  const entries = rootfsEntries(binariesWithLibraries([[options.nodeBinary ?? process.execPath, NODE_BINARY_IN_IMAGE], [options.toxiproxyBinary, TOXIPROXY_BINARY_IN_IMAGE]]))
  const changes = ['WORKDIR /tmp']
  const tag = `${TOXIPROXY_IMAGE_REPO}:${await hashEntries(entries, changes)}`
  return await importIfMissing(client, tag, entries, changes, options.log)
}

/**
 * An image that runs one native program of this machine (e.g. an interop reference node): the binary at
 * /usr/local/bin/<its name> as the entry point, the shared libraries `ldd` lists (none for a static Go binary),
 * /etc/passwd and a world-writable /tmp. Registry-free, as the node image; the tag is the hash of those files, so
 * the image is a cache keyed by the binary's content: built once per binary, reused by every run after.
 *
 * Building a new tag removes the repository's other tags (an older build of the same program) unless a container
 * still uses one: a rebuilt binary leaves one image behind, not one per build.
 */
export async function ensureBinaryImage (options: Pick<EnsureImageOptions, 'client' | 'log'> & { repo: string, binary: string }): Promise<EnsuredImage> {
  const client = options.client ?? await getContainerRuntimeClient()
  assertSameArchitecture(client)
  const inImage = `/usr/local/bin/${path.basename(options.binary)}`
  const entries = rootfsEntries(binariesWithLibraries([[options.binary, inImage]]))
  const changes = [`ENTRYPOINT ["${inImage}"]`, 'WORKDIR /tmp']
  const tag = `${options.repo}:${await hashEntries(entries, changes)}`
  const ensured = await importIfMissing(client, tag, entries, changes, options.log)
  if (ensured.built) await removeOtherTags(client, options.repo, tag, options.log)
  return ensured
}

async function removeOtherTags (client: ContainerRuntimeClient, repo: string, keep: string, log?: (line: string) => void): Promise<void> {
  const images = await client.container.dockerode.listImages({ filters: { reference: [repo] } })
  for (const tag of images.flatMap(i => i.RepoTags ?? []).filter(t => t.startsWith(`${repo}:`) && t !== keep)) {
    // 409: a container (maybe another run's) still uses it; the next build tries again.
    await client.container.dockerode.getImage(tag).remove().then(() => log?.(`removed the older ${tag}`), (err: { statusCode?: number }) => {
      if (err.statusCode !== 404 && err.statusCode !== 409) throw err
    })
  }
}

/** Binaries at their paths in the image, each with the shared libraries it links, and the files a root user needs. */
function binariesWithLibraries (binaries: ReadonlyArray<readonly [source: string, inImage: string]>): Map<string, { source?: string, content?: Buffer, mode: number }> {
  const files = new Map<string, { source?: string, content?: Buffer, mode: number }>()
  for (const [binary, inImage] of binaries) {
    files.set(inImage.slice(1), { source: binary, mode: 0o755 })
    for (const lib of sharedLibraries(binary)) files.set(lib.slice(1), { source: lib, mode: 0o755 })
  }
  files.set('etc/passwd', { content: Buffer.from('root:x:0:0:root:/root:/usr/sbin/nologin\n'), mode: 0o644 })
  files.set('etc/group', { content: Buffer.from('root:x:0:\n'), mode: 0o644 })
  return files
}

/** Removes an image tag this process built (tests clean up after themselves; a user's images are left alone). */
export async function removeImage (tag: string, client?: ContainerRuntimeClient): Promise<void> {
  const c = client ?? await getContainerRuntimeClient()
  await c.container.dockerode.getImage(tag).remove({ force: true }).catch((err: { statusCode?: number }) => {
    if (err.statusCode !== 404) throw err
  })
}

export async function imageExists (tag: string, client?: ContainerRuntimeClient): Promise<boolean> {
  const c = client ?? await getContainerRuntimeClient()
  try {
    await c.container.dockerode.getImage(tag).inspect()
    return true
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false
    throw err
  }
}

async function importIfMissing (client: ContainerRuntimeClient, tag: string, entries: TarEntry[], changes: string[], log?: (line: string) => void): Promise<EnsuredImage> {
  if (await imageExists(tag, client)) {
    log?.(`${tag} already exists`)
    return { tag, built: false }
  }
  const [repo, version] = tag.split(':') as [string, string]
  log?.(`importing ${tag} (${entries.length} entries, ${Math.round(entries.reduce((n, e) => n + (e.size ?? e.content?.length ?? 0), 0) / 1e6)} MB)`)
  const dockerode = client.container.dockerode
  const response = await dockerode.importImage(tarStream(entries), { repo, tag: version, changes } as unknown as object)
  // The engine reports import errors inside the progress stream, not as an HTTP status.
  await new Promise<void>((resolve, reject) => {
    dockerode.modem.followProgress(response, (err: Error | null, output: Array<{ error?: string }>) => {
      const failure = err?.message ?? output.find(o => o.error != null)?.error
      if (failure != null) reject(new Error(`docker import of ${tag} failed: ${failure}`))
      else resolve()
    })
  })
  if (!await imageExists(tag, client)) throw new Error(`docker import reported success but ${tag} does not exist`)
  log?.(`built ${tag}`)
  return { tag, built: true }
}

function assertSameArchitecture (client: ContainerRuntimeClient): void {
  const engine = client.info.containerRuntime.architecture
  const local = ({ x64: 'x86_64', arm64: 'aarch64' } as Record<string, string>)[process.arch] ?? process.arch
  const same = engine === local || (engine === 'amd64' && local === 'x86_64') || (engine === 'arm64' && local === 'aarch64')
  if (process.platform !== 'linux' || !same) {
    throw new Error(`the registry-free image copies this machine's Node binary, which needs a Linux host of the engine's architecture (here ${process.platform}/${local}, engine ${engine}); build docker/Dockerfile instead and pass its tag as DockerBackend's "image"`)
  }
}

/** The image's files: sorted, so that the hash and the archive do not depend on directory listing order. */
export function nodeRootfs (repoRoot: string, nodeBinary: string): TarEntry[] {
  const files = binariesWithLibraries([[nodeBinary, NODE_BINARY_IN_IMAGE]])
  // "type": "module" is all the app's own package.json has to say: nodes/*.ts are ES modules.
  files.set('app/package.json', { content: Buffer.from('{ "name": "chiral-sim-node", "private": true, "type": "module" }\n'), mode: 0o644 })
  for (const file of walk(path.join(repoRoot, 'nodes'))) {
    const rel = path.relative(repoRoot, file)
    if (!rel.endsWith('.ts') || rel.endsWith('.test.ts') || path.basename(rel) === 'test-support.ts') continue
    files.set(`app/${rel}`, { source: file, mode: 0o644 })
  }
  for (const pkgDir of productionPackages(repoRoot)) {
    for (const file of walk(path.join(repoRoot, pkgDir))) {
      const rel = path.relative(repoRoot, file)
      // Types, source maps and docs are dead weight at run time; nested node_modules are packages of their own.
      if (/\.(d\.[cm]?ts|map|md|markdown)$/i.test(rel) || rel.slice(pkgDir.length).includes('/node_modules/')) continue
      files.set(`app/${rel}`, { source: file, mode: statSync(file).mode & 0o111 ? 0o755 : 0o644 })
    }
  }
  return rootfsEntries(files)
}

/** Directories (with a world-writable /tmp) and files, sorted: the hash and the archive must not depend on order. */
function rootfsEntries (files: Map<string, { source?: string, content?: Buffer, mode: number }>): TarEntry[] {
  const dirs = new Set<string>(['tmp'])
  for (const p of files.keys()) {
    for (let d = path.posix.dirname(p); d !== '.'; d = path.posix.dirname(d)) dirs.add(d)
  }
  const entries: TarEntry[] = [...dirs].sort().map(d => ({ path: d, type: 'dir' as const, mode: d === 'tmp' ? 0o1777 : 0o755 }))
  for (const [p, f] of [...files.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    entries.push({ path: p, type: 'file', mode: f.mode, ...(f.content != null ? { content: f.content } : { source: f.source!, size: statSync(f.source!).size }) })
  }
  return entries
}

/** What `ldd` says the binary loads, loader included (copied to the same paths, symlinks resolved). */
function sharedLibraries (binary: string): string[] {
  let out: string
  try {
    out = execFileSync('ldd', [binary], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const text = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`
    if (/not a dynamic executable|statically linked/.test(text)) return []
    throw new Error(`ldd ${binary} failed (the registry-free image needs glibc's ldd): ${(err as Error).message}`)
  }
  const libs: string[] = []
  for (const line of out.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line)
    if (m?.[1] != null) libs.push(m[1])
  }
  return libs
}

/**
 * The packages nodes/ imports, with their dependencies, resolved through package-lock.json exactly as Node would
 * resolve them from those directories. Dev tools (vitest, typescript, playwright, testcontainers itself) stay out.
 */
export function productionPackages (repoRoot: string): string[] {
  const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dependencies?: Record<string, string>, optionalDependencies?: Record<string, string>, peerDependencies?: Record<string, string>, peerDependenciesMeta?: Record<string, { optional?: boolean }>, link?: boolean }>
  }
  const resolve = (from: string, name: string): string | undefined => {
    let base = from
    for (;;) {
      const key = `${base === '' ? '' : `${base}/`}node_modules/${name}`
      if (lock.packages[key] != null) return key
      if (base === '') return undefined
      const i = base.lastIndexOf('/node_modules/')
      base = i < 0 ? '' : base.slice(0, i)
    }
  }
  const seen = new Set<string>()
  const visit = (key: string): void => {
    if (seen.has(key)) return
    seen.add(key)
    const pkg = lock.packages[key]!
    const optional = new Set([...Object.keys(pkg.optionalDependencies ?? {}), ...Object.entries(pkg.peerDependenciesMeta ?? {}).filter(([, m]) => m.optional === true).map(([n]) => n)])
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.peerDependencies })) {
      const found = resolve(key, dep)
      if (found != null) visit(found)
      else if (!optional.has(dep)) throw new Error(`package-lock.json: ${key} needs ${dep}, which is not installed`)
    }
  }
  for (const name of importedPackages(path.join(repoRoot, 'nodes'))) {
    const key = resolve('', name)
    if (key == null) throw new Error(`nodes/ imports "${name}", which package-lock.json does not install`)
    visit(key)
  }
  return [...seen].sort()
}

/** Bare specifiers imported anywhere in nodes/ (tests excluded), reduced to package names. */
function importedPackages (dir: string): Set<string> {
  const names = new Set<string>()
  for (const file of walk(dir)) {
    if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue
    const text = readFileSync(file, 'utf8')
    // Import and export statements at the start of a line, and dynamic imports: prose in comments says "from" too.
    const statics = text.matchAll(/^\s*(?:import|export)\b[^;'"]*?\bfrom\s*['"]([^'"]+)['"]/gm)
    const dynamics = text.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g)
    for (const m of [...statics, ...dynamics]) {
      const spec = m[1]!
      if (spec.startsWith('node:') || spec.startsWith('.') || !/^(@[\w.-]+\/)?[\w.-]+(\/[\w./-]*)?$/.test(spec)) continue
      const parts = spec.split('/')
      names.add(spec.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!)
    }
  }
  return names
}

function * walk (dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) yield * walk(full)
    else if (entry.isFile() || entry.isSymbolicLink()) yield full
  }
}

async function hashEntries (entries: TarEntry[], changes: string[]): Promise<string> {
  const hash = createHash('sha256')
  hash.update(JSON.stringify(changes))
  for (const e of entries) {
    hash.update(`${e.type}\u0000${e.path}\u0000${e.mode.toString(8)}\u0000`)
    if (e.content != null) hash.update(e.content)
    else if (e.source != null) for await (const chunk of createReadStream(e.source)) hash.update(chunk as Buffer)
  }
  return hash.digest('hex').slice(0, 12)
}

/**
 * A static x86-64 Linux program: write(1, "PAUSE_READY\n", 12); for (;;) pause(). As PID 1 it ignores SIGTERM
 * (the kernel drops unhandled signals to PID 1), which is fine: the backend only ever force-removes it.
 */
function pauseElf (): Buffer {
  const code = Buffer.from([
    0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1 (write)
    0xbf, 0x01, 0x00, 0x00, 0x00, // mov edi, 1 (stdout)
    0x48, 0x8d, 0x35, 0x10, 0x00, 0x00, 0x00, // lea rsi, [rip+16] (the message)
    0xba, 0x0c, 0x00, 0x00, 0x00, // mov edx, 12
    0x0f, 0x05, // syscall
    0xb8, 0x22, 0x00, 0x00, 0x00, // loop: mov eax, 34 (pause)
    0x0f, 0x05, // syscall
    0xeb, 0xf7, // jmp loop
    ...Buffer.from(`${PAUSE_READY}\n`, 'ascii')
  ])
  const base = 0x400000
  const headerSize = 64 + 56
  const total = headerSize + code.length
  const elf = Buffer.alloc(total)
  // ELF header
  elf.write('\u007fELF', 0, 'latin1')
  elf[4] = 2 // 64-bit
  elf[5] = 1 // little endian
  elf[6] = 1 // version
  elf.writeUInt16LE(2, 16) // ET_EXEC
  elf.writeUInt16LE(0x3e, 18) // x86-64
  elf.writeUInt32LE(1, 20)
  elf.writeBigUInt64LE(BigInt(base + headerSize), 24) // entry
  elf.writeBigUInt64LE(64n, 32) // program headers right after this header
  elf.writeUInt16LE(64, 52)
  elf.writeUInt16LE(56, 54)
  elf.writeUInt16LE(1, 56)
  elf.writeUInt16LE(64, 58)
  // One PT_LOAD segment, read + execute, mapping the whole file
  elf.writeUInt32LE(1, 64)
  elf.writeUInt32LE(5, 68)
  elf.writeBigUInt64LE(0n, 72)
  elf.writeBigUInt64LE(BigInt(base), 80)
  elf.writeBigUInt64LE(BigInt(base), 88)
  elf.writeBigUInt64LE(BigInt(total), 96)
  elf.writeBigUInt64LE(BigInt(total), 104)
  elf.writeBigUInt64LE(0x1000n, 112)
  code.copy(elf, headerSize)
  return elf
}

if (import.meta.main) {
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true'
  const log = (line: string): void => { process.stderr.write(`docker-image: ${line}\n`) }
  const node = await ensureNodeImage({ log })
  await ensurePauseImage({ log })
  process.stdout.write(`${node.tag}\n`)
}
