import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { isIP } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { GenericContainer, StartedNetwork, Wait, type ContainerRuntimeClient, type StartedTestContainer } from 'testcontainers'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { NodeConfig } from '../../nodes/config.ts'
import { RemoteNode } from '../../nodes/control/client.ts'
import { generateControlToken } from '../../nodes/control/token.ts'
import { canBind, freePort } from '../host/free-port.ts'
import { onExit } from '../host/exit-hook.ts'
import { TCP_BLACKHOLE_READY } from '../host/tcp-blackhole.ts'
import { withDeadline } from '../../nodes/util.ts'
import type { ImageNodeOptions, StartedBlackhole, StartedImageNode, StartedNode } from './backend.ts'
import {
  CONTROL_PORT, LIBP2P_PORT, NODE_BINARY_IN_IMAGE, PAUSE_READY, ensureNodeImage, ensurePauseImage, nodeImageArgs
} from './docker-image.ts'
import { NETWORK_PREFIX, NODE_LABEL, RUN_LABEL, reapAbandonedRuns } from './docker-reaper.ts'
import { ownerLabels } from './owner.ts'
import { superviseWith, type SuperviseOptions, type SupervisedNode, type SupervisingBackend } from './supervise.ts'
import { capture, connectEngine, engineAvailable, engineIsLocal, ignoreStatus, isPortTaken, literalAddress, PublishingContainer, type Dockerode } from './docker-engine.ts'
import { DockerNode, listenAddress, type Slot } from './docker-node.ts'
import { containerProbe, portProbe } from './docker-probes.ts'

/**
 * Every node a container on a network created for the run, driven over its control channel through the port the
 * engine publishes. Nodes dial each other at their container IPs on that network; the harness reaches them only
 * through testcontainers' host and mapped ports, so a remote DOCKER_HOST works the same as a local engine.
 *
 * A local engine publishes on 127.0.0.1 only, at host ports chosen like freePort's (outside the kernel's ephemeral
 * range, which every outgoing connection draws from) and chosen again when one was taken meanwhile. A remote engine
 * must publish where this machine can reach it, so it picks the ports on its own addresses; the control token is
 * what guards them there. Each node container gets its own token, copied into its filesystem (never in its command
 * line or environment, which `docker inspect` shows).
 *
 * Each node lives in two containers: a "pause" container that owns the network namespace (the IP and the
 * published ports) and the node container that joins it. Killing the node container therefore leaves a live
 * address that refuses connections — a dead process on a live server, as in the plan — and a restart comes back at
 * the same IP and the same published ports.
 *
 * Split by concept: the engine and container helpers (docker-engine.ts), a node's slot and container
 * (docker-node.ts), the supervisor's probes (docker-probes.ts), the images (docker-image.ts), the reaper of dead
 * runs (docker-reaper.ts); this file keeps the backend: slots, nodes, image nodes, blackholes and teardown.
 */

export interface DockerBackendOptions {
  /** A prebuilt image (e.g. from docker/Dockerfile); default: build the registry-free image (docker-image.ts). */
  image?: string
  /** Until the node prints its ready line; default 60 s (the vfs storage driver copies the image per container). */
  startTimeoutMs?: number
  /** Graceful stop budget: half for the shutdown command, half for `docker stop`; default 10 s. */
  stopTimeoutMs?: number
  /** Deadline for finding a Docker engine; default 15 s. */
  engineTimeoutMs?: number
}

/** Inside the node container: the token file, root-owned 0600 in the container's own filesystem. */
const TOKEN_PATH_IN_CONTAINER = '/chiral-control-token'
const TCP_BLACKHOLE_FILE = fileURLToPath(new URL('../host/tcp-blackhole.ts', import.meta.url))
/** Next to the image's package.json ("type": "module"), so its node runs the file as the ES module it is. */
const TCP_BLACKHOLE_IN_IMAGE = '/app/tcp-blackhole.ts'
/** A published port taken between choosing and binding it (another run, another tool): choose again, this often. */
const PUBLISH_ATTEMPTS = 5

export class DockerBackend implements SupervisingBackend {
  readonly mode = 'docker' as const
  readonly transport = 'tcp' as const
  readonly runId: string
  readonly image: string
  readonly network: StartedNetwork
  readonly #client: ContainerRuntimeClient
  readonly #pauseImage: string | undefined
  readonly #options: Required<Omit<DockerBackendOptions, 'image'>>
  readonly #slots = new Map<string, Promise<Slot>>()
  readonly #nodes = new Set<DockerNode>()
  readonly #supervised = new Set<SupervisedNode>()
  readonly #blackholes = new Set<StartedBlackhole>()
  /** Every container this run created and has not removed yet: what the exit hook removes. */
  readonly #containers = new Set<string>()
  /** Every control client handed out, killed nodes' included: an open event subscription would retry for minutes. */
  readonly #handles = new Set<RemoteNode>()
  readonly #offExit: () => void
  readonly #owner = ownerLabels()
  #serial = 0
  #stateDir: Promise<string> | undefined
  #disposed: Promise<void> | undefined

  /**
   * Finds the engine, makes sure the images exist (building them without a registry if needed) and creates the
   * run's network. The network comes last, so a failure leaves nothing behind but the images, which are a cache.
   */
  static async create (options: DockerBackendOptions = {}): Promise<DockerBackend> {
    const engineTimeoutMs = options.engineTimeoutMs ?? 15_000
    const client = await connectEngine(engineTimeoutMs)
    const image = options.image ?? (await ensureNodeImage({ client })).tag
    const pauseImage = (await ensurePauseImage({ client }))?.tag
    // What a SIGKILLed harness left behind goes first: its containers hold addresses, ports and memory.
    await reapAbandonedRuns(client)
    const runId = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
    // Created here rather than by testcontainers' Network, so that it carries the owner labels the reaper reads.
    const name = `${NETWORK_PREFIX}${runId}`
    const network = new StartedNetwork(client, name, await client.network.create({
      Name: name, CheckDuplicate: true, Driver: 'bridge', Labels: { [RUN_LABEL]: runId, ...ownerLabels() }
    }))
    return new DockerBackend(client, network, runId, image, pauseImage, {
      startTimeoutMs: options.startTimeoutMs ?? 60_000,
      stopTimeoutMs: options.stopTimeoutMs ?? 10_000,
      engineTimeoutMs
    })
  }

  /** Whether an engine answers, and if not why: tests skip (or, under CI, fail) with this reason. */
  static async available (timeoutMs = 10_000): Promise<{ ok: true, host: string } | { ok: false, reason: string }> {
    return await engineAvailable(timeoutMs)
  }

  private constructor (client: ContainerRuntimeClient, network: StartedNetwork, runId: string, image: string, pauseImage: string | undefined, options: Required<Omit<DockerBackendOptions, 'image'>>) {
    this.#client = client
    this.network = network
    this.runId = runId
    this.image = image
    this.#pauseImage = pauseImage
    this.#options = options
    this.#offExit = onExit(() => { this.#removeSynchronously() })
  }

  get nodes (): ReadonlySet<DockerNode> {
    return this.#nodes
  }

  /** Reserves the node's place on the network (its pause container) and returns the address it will listen on. */
  async place (config: NodeConfig, signal: AbortSignal): Promise<{ listen: string[] }> {
    const slot = await this.#slot(config.name, signal)
    return { listen: [listenAddress(slot)] }
  }

  async startNode (config: NodeConfig, signal: AbortSignal): Promise<DockerNode> {
    this.#assertOpen()
    const slot = await this.#slot(config.name, signal)
    const listen = listenAddress(slot)
    if (config.listen != null && (config.listen.length !== 1 || config.listen[0] !== listen)) {
      throw new Error(`docker backend: node "${config.name}" listens at ${listen} (from place()); the config asks for ${config.listen.join(', ')}`)
    }
    const effective: NodeConfig = { ...config, transport: 'tcp', listen: [listen] }
    const { container, containerName, logs } = this.#inSlot(this.image, config.name, slot, this.#options.startTimeoutMs)
    const token = generateControlToken()
    container
      .withCopyContentToContainer([{ content: `${token}\n`, target: TOKEN_PATH_IN_CONTAINER, mode: 0o600 }])
      .withCommand(nodeImageArgs(effective, TOKEN_PATH_IN_CONTAINER))
      .withWaitStrategy(Wait.forLogMessage(/CHIRAL_READY /))
    let started: StartedTestContainer
    try {
      started = await this.#startContainer(container, containerName, signal)
    } catch (err) {
      throw new Error(`node "${config.name}" (container ${containerName}) did not start: ${(err as Error).message}${logs.text.trim() === '' ? '' : `; its output:\n${logs.text.trim()}`}`)
    }
    // The ready line says where the node is; the control channel says it authoritatively and proves the mapping works.
    const probe = new RemoteNode({ name: config.name, role: config.role, url: slot.controlUrl, token, requestTimeoutMs: 10_000 })
    let info: { peerId: string, multiaddrs: string[] }
    try {
      await RemoteNode.waitUntilReady(slot.controlUrl, { token, signal, timeoutMs: 15_000 })
      info = await probe.call('info', {}, { signal })
    } catch (err) {
      await this.#remove(started.getId())
      throw new Error(`node "${config.name}" started but its control channel at ${slot.controlUrl} does not answer: ${(err as Error).message}${logs.text.trim() === '' ? '' : `; its output:\n${logs.text.trim()}`}`)
    } finally {
      await probe.close()
    }
    const node = new DockerNode({
      config: effective,
      containerId: started.getId(),
      slot,
      token,
      info,
      docker: this.#docker,
      logs,
      stopTimeoutMs: this.#options.stopTimeoutMs,
      onGone: gone => {
        this.#nodes.delete(gone)
        this.#containers.delete(gone.containerId)
      }
    })
    this.#nodes.add(node)
    this.#handles.add(node.handle)
    return node
  }

  /**
   * Containers reach this machine at their network's gateway, the bridge's address on this host (and this machine
   * reaches them at their container IPs): Toxiproxy and external nodes listen there. A remote engine's bridge is on
   * another machine: nothing listening here can sit between its containers.
   */
  async hostAddress (signal: AbortSignal): Promise<string> {
    const info = await withDeadline(this.#client.container.dockerode.getNetwork(this.network.getId()).inspect(), this.#options.engineTimeoutMs, 'the run network did not answer an inspect') as { IPAM?: { Config?: Array<{ Gateway?: string }> } }
    signal.throwIfAborted()
    const gateway = info.IPAM?.Config?.find(c => c.Gateway != null && isIP(c.Gateway) === 4)?.Gateway
    if (gateway == null) throw new Error(`the run network ${this.network.getName()} has no IPv4 gateway for this machine's listeners (fault proxies, external nodes)`)
    // Bind, not os.networkInterfaces(): a bridge with no container attached yet is down and libuv leaves it out.
    if (!await canBind(gateway)) {
      throw new Error(`fault proxies and external nodes run on this machine, but the run network's gateway ${gateway} is not one of its addresses: the Docker engine (DOCKER_HOST=${process.env.DOCKER_HOST ?? 'unset'}) is another machine, whose containers cannot reach them. Run such scenarios against a local engine, or with --mode tcp or process`)
    }
    return gateway
  }

  /** An image node's address: its own slot on the run network, like a chiral node's. */
  async placeImage (name: string, signal: AbortSignal): Promise<string> {
    return (await this.#slot(name, signal)).ip
  }

  /** A third-party image (an external bootstrap) in its slot: a restart comes back at the same address. */
  async startImage (options: ImageNodeOptions, signal: AbortSignal): Promise<StartedImageNode> {
    this.#assertOpen()
    const slot = await this.#slot(options.name, signal)
    const { container, containerName, logs } = this.#inSlot(options.image, options.name, slot, options.startTimeoutMs)
    container.withCommand(options.args)
    // It shares its slot's network namespace, so it exposes no port to check: a ready line, or the runner's ping, decides.
    if (options.readyLine != null) container.withWaitStrategy(Wait.forLogMessage(options.readyLine))
    let started: StartedTestContainer
    try {
      started = await this.#startContainer(container, containerName, signal)
    } catch (err) {
      throw new Error(`external node "${options.name}" (image ${options.image}, container ${containerName}) did not start: ${(err as Error).message}${logs.text.trim() === '' ? '' : `; its output:\n${logs.text.trim()}`}`)
    }
    const id = started.getId()
    const docker = this.#docker
    const gone = async (): Promise<void> => {
      await docker.getContainer(id).remove({ force: true }).catch(ignoreStatus(404, 409))
      this.#containers.delete(id)
    }
    return {
      logs: () => logs.text,
      kill: async () => {
        await docker.getContainer(id).kill({ signal: 'SIGKILL' }).catch(ignoreStatus(404, 409))
        await gone()
      },
      stop: async () => {
        await docker.getContainer(id).stop({ t: Math.max(1, Math.ceil(this.#options.stopTimeoutMs / 1000)) }).catch(ignoreStatus(304, 404))
        await gone()
      }
    }
  }

  /** A container on the run's network that accepts connections and never answers (the plan's hung bootstrap). */
  async startBlackhole (name: string, signal: AbortSignal): Promise<StartedBlackhole> {
    this.#assertOpen()
    const containerName = `chiral-sim-${this.runId}-${name}-${++this.#serial}`
    const container = new GenericContainer(this.image)
      .withName(containerName)
      .withLabels(this.#labels(name))
      .withNetwork(this.network)
      // The harness's own blackhole (sim/host/tcp-blackhole.ts), run by the image's node: one blackhole, not two.
      .withCopyFilesToContainer([{ source: TCP_BLACKHOLE_FILE, target: TCP_BLACKHOLE_IN_IMAGE }])
      .withEntrypoint([NODE_BINARY_IN_IMAGE, TCP_BLACKHOLE_IN_IMAGE, String(LIBP2P_PORT)])
      .withCommand([])
      .withWaitStrategy(Wait.forLogMessage(TCP_BLACKHOLE_READY))
      .withStartupTimeout(this.#options.startTimeoutMs)
    const started = await this.#startContainer(container, containerName, signal)
    // A real-looking /p2p/ suffix lets the dialer get as far as the security handshake, as with sim/host/blackhole.ts.
    const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const id = started.getId()
    let closed: Promise<void> | undefined
    const hole: StartedBlackhole = {
      multiaddr: `/ip4/${started.getIpAddress(this.network.getName())}/tcp/${LIBP2P_PORT}/p2p/${peerId}`,
      close: async () => {
        closed ??= (async () => { await this.#remove(id); this.#blackholes.delete(hole) })()
        await closed
      },
      [Symbol.asyncDispose]: async () => { await hole.close() }
    }
    this.#blackholes.add(hole)
    return hole
  }

  /**
   * Puts a running node under a Supervisor. Check 1 inspects the node container, check 2 connects to the libp2p
   * port from inside it, check 3 pings it from the harness through the published port; a restart replaces the node
   * container in the same network namespace, so address, peer ID and control URL stay the same.
   */
  async supervise (node: StartedNode, options: SuperviseOptions = {}): Promise<SupervisedNode> {
    if (!(node instanceof DockerNode) || !this.#nodes.has(node)) throw new Error('supervise: not a running node of this docker backend')
    const historyFile = options.historyFile ?? path.join(await this.#state(), `${node.config.name}.supervisor.json`)
    return await superviseWith<DockerNode>(node, node.config, {
      checkProcess: async n => await containerProbe(this.#docker, n),
      checkPort: async (n, signal) => await portProbe(this.#client, n, signal),
      pingAddress: n => `/${multiaddrHostProto(n.slot.pingHost)}/${n.slot.pingHost}/tcp/${n.slot.pingPort}/p2p/${n.peerId}`,
      endedAt: n => n.goneAt,
      startNode: async (config, signal) => await this.startNode(config, signal)
    }, historyFile, options, this.#supervised)
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    this.#disposed ??= this.#dispose()
    await this.#disposed
  }

  async #dispose (): Promise<void> {
    // Supervisors first, or they would restart the nodes this is about to stop.
    await Promise.allSettled([...this.#supervised].map(async s => { await s.stop() }))
    await Promise.allSettled([...this.#nodes].map(async n => { await n[Symbol.asyncDispose]() }))
    await Promise.allSettled([...this.#blackholes].map(async b => { await b.close() }))
    // Whatever is left (pause containers, a container whose start failed half-way) goes by label, not by bookkeeping.
    const leftovers = await this.#docker.listContainers({ all: true, filters: { label: [`${RUN_LABEL}=${this.runId}`] } }).catch(() => [])
    await Promise.allSettled([...new Set([...this.#containers, ...leftovers.map(c => c.Id)])].map(async id => { await this.#remove(id) }))
    let networkError: unknown
    try {
      await this.network.stop()
    } catch (err) {
      networkError = err
    }
    this.#offExit()
    await Promise.allSettled([...this.#handles].map(async h => { await h.close() }))
    this.#handles.clear()
    this.#slots.clear()
    this.#nodes.clear()
    this.#blackholes.clear()
    this.#supervised.clear()
    if (this.#stateDir != null) await rm(await this.#stateDir, { recursive: true, force: true })
    if (networkError != null) throw new Error(`docker backend: could not remove network ${this.network.getName()}: ${(networkError as Error).message}`)
  }

  get #docker (): Dockerode {
    return this.#client.container.dockerode
  }

  #assertOpen (): void {
    if (this.#disposed != null) throw new Error('docker backend is disposed')
  }

  #labels (name: string): Record<string, string> {
    return { [RUN_LABEL]: this.runId, [NODE_LABEL]: name, ...this.#owner }
  }

  /** A container of `image` in `slot`'s network namespace, named, labelled for cleanup, its output captured. */
  #inSlot (image: string, name: string, slot: Slot, startupTimeoutMs: number): { container: GenericContainer, containerName: string, logs: { text: string } } {
    const logs = { text: '' }
    const containerName = `chiral-sim-${this.runId}-${name}-${++this.#serial}`
    const container = new GenericContainer(image)
      .withName(containerName)
      .withLabels(this.#labels(name))
      .withNetworkMode(`container:${slot.pause.getId()}`)
      .withStartupTimeout(startupTimeoutMs)
      .withLogConsumer(stream => { capture(stream, logs) })
    return { container, containerName, logs }
  }

  async #slot (name: string, signal: AbortSignal): Promise<Slot> {
    this.#assertOpen()
    let slot = this.#slots.get(name)
    if (slot == null) {
      slot = this.#createSlot(name, signal)
      this.#slots.set(name, slot)
      // A failed slot must not poison the name: the next start tries again.
      slot.catch(() => { this.#slots.delete(name) })
    }
    return await slot
  }

  async #createSlot (name: string, signal: AbortSignal): Promise<Slot> {
    const containerName = `chiral-sim-${this.runId}-${name}-net`
    const local = await engineIsLocal(this.#client)
    for (let attempt = 1; ; attempt++) {
      const ports = local ? { control: await freePort({ signal }), libp2p: await freePort({ signal }) } : undefined
      let container = new PublishingContainer(this.#pauseImage ?? this.image)
        .withName(containerName)
        .withLabels(this.#labels(name))
        .withNetwork(this.network)
        .withExposedPorts(
          ports != null ? { container: CONTROL_PORT, host: ports.control } : CONTROL_PORT,
          ports != null ? { container: LIBP2P_PORT, host: ports.libp2p } : LIBP2P_PORT
        )
        .withWaitStrategy(Wait.forLogMessage(PAUSE_READY))
        .withStartupTimeout(this.#options.startTimeoutMs)
      if (local) container = container.publishOn('127.0.0.1')
      if (this.#pauseImage == null) {
        // No static pause program for this architecture: the node image sleeping does the same job, only heavier.
        container = container
          .withEntrypoint([NODE_BINARY_IN_IMAGE, '-e', `process.on("SIGTERM",()=>process.exit(0));console.log(${JSON.stringify(PAUSE_READY)});setInterval(()=>{},1<<30)`])
          .withCommand([])
      }
      let pause: StartedTestContainer
      try {
        pause = await this.#startContainer(container, containerName, signal)
      } catch (err) {
        if (ports != null && attempt < PUBLISH_ATTEMPTS && isPortTaken(err) && !signal.aborted) continue
        throw err
      }
      // An IP literal: the node's control server refuses host names other than localhost (DNS rebinding).
      const host = local ? '127.0.0.1' : await literalAddress(pause.getHost())
      return {
        name,
        pause,
        ip: pause.getIpAddress(this.network.getName()),
        controlUrl: `http://${isIP(host) === 6 ? `[${host}]` : host}:${ports?.control ?? pause.getMappedPort(CONTROL_PORT)}`,
        pingHost: host,
        pingPort: ports?.libp2p ?? pause.getMappedPort(LIBP2P_PORT)
      }
    }
  }

  /**
   * Starts a container, tracking its ID for the exit hook as soon as it has one. An abort does not wait for
   * testcontainers (which cannot be cancelled): the caller gets the abort, and the container is removed when it
   * turns up.
   */
  async #startContainer (container: { start: () => Promise<StartedTestContainer> }, name: string, signal: AbortSignal): Promise<StartedTestContainer> {
    signal.throwIfAborted()
    const starting = container.start().then(started => {
      this.#containers.add(started.getId())
      return started
    })
    let onAbort: (() => void) | undefined
    const aborted = new Promise<never>((_resolve, reject) => {
      onAbort = () => { reject(signal.reason instanceof Error ? signal.reason : new Error(`start of ${name} was aborted`)) }
      signal.addEventListener('abort', onAbort, { once: true })
    })
    try {
      return await Promise.race([starting, aborted])
    } catch (err) {
      if (signal.aborted) {
        // The start goes on without us: whatever it creates is removed when it turns up.
        void starting.then(async s => { await this.#remove(s.getId()) }, async () => { await this.#removeByName(name) })
      } else {
        // A failed start may have created the container without returning it, so it goes by name.
        await this.#removeByName(name)
      }
      throw err
    } finally {
      if (onAbort != null) signal.removeEventListener('abort', onAbort)
    }
  }

  async #remove (id: string): Promise<void> {
    await this.#docker.getContainer(id).remove({ force: true }).catch(ignoreStatus(404, 409))
    this.#containers.delete(id)
  }

  async #removeByName (name: string): Promise<void> {
    await this.#docker.getContainer(name).remove({ force: true }).catch(ignoreStatus(404, 409))
  }

  async #state (): Promise<string> {
    this.#stateDir ??= mkdtemp(path.join(tmpdir(), 'chiral-sim-docker-'))
    return await this.#stateDir
  }

  /**
   * The 'exit' hook: no promise can settle any more, so the docker CLI (which honours DOCKER_HOST as testcontainers
   * does) removes what is left. Best effort, bounded; a normal run has already removed everything.
   */
  #removeSynchronously (): void {
    const ids = [...this.#containers]
    const run = (args: string[]): void => {
      try { execFileSync('docker', args, { stdio: 'ignore', timeout: 10_000 }) } catch { /* nothing more can be done here */ }
    }
    if (ids.length > 0) run(['rm', '--force', ...ids])
    run(['network', 'rm', this.network.getName()])
  }
}

function multiaddrHostProto (host: string): 'ip4' | 'ip6' | 'dns4' {
  const family = isIP(host)
  return family === 4 ? 'ip4' : family === 6 ? 'ip6' : 'dns4'
}

