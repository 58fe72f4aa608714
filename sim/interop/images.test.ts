import { copyFileSync, appendFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { getContainerRuntimeClient } from 'testcontainers'
import { afterAll, describe, expect, it } from 'vitest'
import { BUILTIN_DIR, loadScenarioFile } from '../../scenarios/load.ts'
import { ScenarioSchema } from '../../scenarios/schema.ts'
import { createBackend } from '../backends/index.ts'
import { DockerBackend } from '../backends/docker.ts'
import { ensureBinaryImage, removeImage } from '../backends/docker-image.ts'
import { OWNER_LABELS } from '../backends/owner.ts'
import { runScenario } from '../runner/run-scenario.ts'
import { REFERENCE_IMPLS, referenceBinaryMissing, referenceBinaryPath, referenceImageRepo } from './binaries.ts'

/**
 * The reference nodes as `role: external` bootstraps in docker mode: containers of the run, from images built
 * from interop/bin without a registry and cached by the binary's content. Needs a Docker engine and the binaries
 * (scripts/setup-interop.sh); without them the suite skips saying why, except under CI=true, where it fails.
 */
const engine = await DockerBackend.available()
const missing = REFERENCE_IMPLS.map(referenceBinaryMissing).filter(m => m != null).join('; ')
const why = [engine.ok ? '' : engine.reason, missing].filter(Boolean).join('; ')
const gate = why !== '' && process.env.CI !== 'true'

describe('a reference node in a scenario', () => {
  const ext = (over: Record<string, unknown>): unknown => ({
    name: 'ref', title: 't', description: 'd',
    nodes: [{ role: 'external', name: 'ext', multiaddr: '/ip4/{host}/tcp/{port}/p2p/12D3KooWCNVcVhbwZJh8gKJKqb8y8PxWHTHMGWcSopezMJsLhfQC', ...over }, { role: 'peer', name: 'A' }],
    steps: [{ action: 'start', nodes: ['ext', 'A'] }, { action: 'kill', nodes: ['ext'] }, { action: 'health', nodes: ['A'], expect: { isReachable: false } }]
  })

  it('is started by chiral-sim (it may be killed and use {host} and {port}), and brings its own image', () => {
    expect(ScenarioSchema.safeParse(ext({ reference: 'rust', command: ['--host', '{host}', '--port', '{port}'] })).success).toBe(true)
    const both = ScenarioSchema.safeParse(ext({ reference: 'go', image: 'mine:1' }))
    expect(both.error?.issues.map(i => `${i.path.join('.')}: ${i.message}`)).toEqual([expect.stringMatching(/^nodes\.0\.image: a reference node brings its own image/)])
    expect(ScenarioSchema.safeParse(ext({ reference: 'java' })).success).toBe(false)
  })

  it('without its binary, the run errs saying how to build it', async () => {
    const saved = process.env.CHIRAL_GO_NODE
    process.env.CHIRAL_GO_NODE = path.join(tmpdir(), 'no-such-chiral-go-node')
    try {
      const scenario = ScenarioSchema.parse(ext({ reference: 'go', command: ['--host', '{host}', '--port', '{port}'] }))
      const record = await runScenario(scenario, { mode: 'tcp', seed: 1, createBackend })
      expect(record.status).toBe('error')
      expect(record.reason).toMatch(/external node "ext" is the go reference node, but there is no go reference node at .*no-such-chiral-go-node: run `bash scripts\/setup-interop.sh go`/)
    } finally {
      if (saved == null) delete process.env.CHIRAL_GO_NODE
      else process.env.CHIRAL_GO_NODE = saved
    }
  })
})

describe.skipIf(gate)(`reference nodes as docker-mode bootstraps${gate ? ` — skipped: ${why}` : ''}`, () => {
  const testRepo = `chiral-sim-interop-selftest-${process.pid}`
  const scratch = mkdtempSync(path.join(tmpdir(), 'chiral-images-'))
  afterAll(async () => {
    rmSync(scratch, { recursive: true, force: true })
    const client = await getContainerRuntimeClient()
    const left = await client.container.dockerode.listImages({ filters: { reference: [testRepo] } })
    for (const tag of left.flatMap(i => i.RepoTags ?? [])) await removeImage(tag, client)
  })

  it('runs on this machine (CI needs the engine and the binaries)', () => {
    expect(why).toBe('')
  })

  for (const impl of REFERENCE_IMPLS) {
    it(`${impl}: scenarios/interop/${impl}-bootstrap.yaml (the plan's Tests 1, 3, 5) passes with the bootstrap a container, and leaves one cached image and nothing else`, async () => {
      const file = path.join(BUILTIN_DIR, 'interop', `${impl}-bootstrap.yaml`)
      const scenario = await loadScenarioFile(file)
      const record = await runScenario(scenario, { mode: 'docker', seed: 11, file, createBackend })
      const failed = record.assertions.filter(a => !a.passed).map(a => `${a.description}: expected ${a.expected}, got ${a.actual}`)
      expect({ status: record.status, reason: record.reason, failed }).toEqual({ status: 'passed', reason: undefined, failed: [] })
      // A container of the run: its own address on the run network and the image's port, not a process on the gateway.
      const starts = record.events.filter(e => e.node === 'ext' && e.type === 'node:started').map(e => 'multiaddrs' in e ? e.multiaddrs[0] : '')
      expect(starts).toHaveLength(2)
      for (const addr of starts) expect(addr).toMatch(/^\/ip4\/[0-9.]+\/tcp\/4001\/p2p\//)
      expect(record.nodes.find(n => n.name === 'ext')?.output?.text).toContain(`chiral-${impl}-node`)

      const client = await getContainerRuntimeClient()
      const docker = client.container.dockerode
      const mine = `${OWNER_LABELS.pid}=${process.pid}`
      expect((await docker.listContainers({ all: true, filters: { label: [mine] } })).map(c => c.Names)).toEqual([])
      expect((await docker.listNetworks({ filters: { label: [mine] } })).map(n => n.Name)).toEqual([])
      // The image is a cache keyed by the binary: exactly one tag of the repository, the binary's, and no rebuild.
      const again = await ensureBinaryImage({ client, repo: referenceImageRepo(impl), binary: referenceBinaryPath(impl) })
      expect(again.built).toBe(false)
      const tags = (await docker.listImages({ filters: { reference: [referenceImageRepo(impl)] } })).flatMap(i => i.RepoTags ?? [])
      expect(tags).toEqual([again.tag])
    }, 180_000)
  }

  it('a rebuilt binary gets a new image and its older one is removed', async () => {
    const client = await getContainerRuntimeClient()
    const binary = path.join(scratch, 'prog')
    copyFileSync('/usr/bin/true', binary)
    const first = await ensureBinaryImage({ client, repo: testRepo, binary })
    expect(first.built).toBe(true)
    expect((await ensureBinaryImage({ client, repo: testRepo, binary })).built).toBe(false)
    // Another build of the program: bytes after an ELF's sections do not change what it runs.
    appendFileSync(binary, Buffer.from([0]))
    const second = await ensureBinaryImage({ client, repo: testRepo, binary })
    expect(second).toMatchObject({ built: true })
    expect(second.tag).not.toBe(first.tag)
    const tags = (await client.container.dockerode.listImages({ filters: { reference: [testRepo] } })).flatMap(i => i.RepoTags ?? [])
    expect(tags).toEqual([second.tag])
  }, 60_000)
})
