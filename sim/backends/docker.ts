import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { isIP } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { StartedNetwork, Wait, type ContainerRuntimeClient, type StartedTestContainer } from 'testcontainers'
import type { NodeConfig } from '../../nodes/config.ts'
import { RemoteNode } from '../../nodes/control/client.ts'
import { generateControlToken } from '../../nodes/control/token.ts'
import { canBind } from '../host/free-port.ts'
import { withDeadline } from '../../nodes/util.ts'
import type { ImageNodeOptions, StartedBlackhole, StartedImageNode, StartedNode } from './backend.ts'
import { ensureBinaryImage, ensureNodeImage, ensurePauseImage, nodeImageArgs } from './docker-image.ts'
import { NETWORK_PREFIX, RUN_LABEL, reapAbandonedRuns } from './docker-reaper.ts'
import { ownerLabels } from './owner.ts'
import { superviseWith, type SuperviseOptions, type SupervisedNode, type SupervisingBackend } from './supervise.ts'
import { connectEngine, engineAvailable, type Dockerode } from './docker-engine.ts'
import { RunContainers } from './docker-containers.ts'
import { DockerNode, listenAddress } from './docker-node.ts'
import { containerProbe, portProbe } from './docker-probes.ts'
import { inSlot, multiaddrHostProto, Slots, type Slot } from './docker-slots.ts'
import { startImageNode } from './docker-image-node.ts'
import { startBlackholeContainer } from './docker-blackhole.ts'
import { stopInOrder } from './stop-order.ts'

/**
 * Every node a container on a network created for the run, driven over its control channel through the port the
 * engine publishes. Nodes dial each other at their container IPs on that network; the harness reaches them only
 * through testcontainers' host and mapped ports, so a remote DOCKER_HOST works the same as a local engine.
 *
 * Each node lives in two containers: its slot (docker-slots.ts: a pause container owning the IP and the published
 * ports, so a killed node leaves a live address that refuses connections and a restart comes back at the same
 * place) and the node container that joins it. Each node container gets its own token, copied into its filesystem
 * (never in its command line or environment, which `docker inspect` shows).
 *
 * Split by concept: the engine (docker-engine.ts), the images (docker-image.ts), the run's containers and their
 * cleanup (docker-containers.ts), slots (docker-slots.ts), a chiral node's container (docker-node.ts), a
 * third-party image node (docker-image-node.ts), the blackhole (docker-blackhole.ts), the supervisor's probes
 * (docker-probes.ts), the reaper of dead runs (docker-reaper.ts); this file composes them into the backend.
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

export class DockerBackend implements SupervisingBackend {
  readonly mode = 'docker' as const
  readonly transport = 'tcp' as const
  readonly runId: string
  readonly image: string
  readonly network: StartedNetwork
  readonly #client: ContainerRuntimeClient
  readonly #options: Required<Omit<DockerBackendOptions, 'image'>>
  readonly #containers: RunContainers
  readonly #slots: Slots
  readonly #nodes = new Set<DockerNode>()
  readonly #supervised = new Set<SupervisedNode>()
  readonly #blackholes = new Set<StartedBlackhole>()
  /** Every control client handed out, killed nodes' included: an open event subscription would retry for minutes. */
  readonly #handles = new Set<RemoteNode>()
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
    this.#options = options
    this.#containers = new RunContainers(client, runId, network)
    this.#slots = new Slots(this.#containers, { node: image, pause: pauseImage }, options.startTimeoutMs)
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
    const { container, containerName, logs } = inSlot(this.#containers, this.image, slot, this.#options.startTimeoutMs)
    const token = generateControlToken()
    container
      .withCopyContentToContainer([{ content: `${token}\n`, target: TOKEN_PATH_IN_CONTAINER, mode: 0o600 }])
      .withCommand(nodeImageArgs(effective, TOKEN_PATH_IN_CONTAINER))
      .withWaitStrategy(Wait.forLogMessage(/CHIRAL_READY /))
    let started: StartedTestContainer
    try {
      started = await this.#containers.start(container, containerName, signal)
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
      await this.#containers.remove(started.getId())
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
        this.#containers.forget(gone.containerId)
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

  async binaryImage (repo: string, binary: string, signal: AbortSignal): Promise<string> {
    signal.throwIfAborted()
    return (await ensureBinaryImage({ client: this.#client, repo, binary })).tag
  }

  /** A third-party image (an external bootstrap) in its slot: a restart comes back at the same address. */
  async startImage (options: ImageNodeOptions, signal: AbortSignal): Promise<StartedImageNode> {
    const slot = await this.#slot(options.name, signal)
    return await startImageNode(this.#containers, slot, options, this.#options.stopTimeoutMs, signal)
  }

  /** A container on the run's network that accepts connections and never answers (the plan's hung bootstrap). */
  async startBlackhole (name: string, signal: AbortSignal): Promise<StartedBlackhole> {
    this.#assertOpen()
    const hole = await startBlackholeContainer(this.#containers, this.image, name, this.#options.startTimeoutMs, signal, closed => { this.#blackholes.delete(closed) })
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
    await stopInOrder({ supervised: this.#supervised, nodes: this.#nodes, blackholes: this.#blackholes })
    await this.#containers.removeAll()
    let networkError: unknown
    try {
      await this.network.stop()
    } catch (err) {
      networkError = err
    }
    this.#containers.release()
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

  async #slot (name: string, signal: AbortSignal): Promise<Slot> {
    this.#assertOpen()
    return await this.#slots.get(name, signal)
  }

  async #state (): Promise<string> {
    this.#stateDir ??= mkdtemp(path.join(tmpdir(), 'chiral-sim-docker-'))
    return await this.#stateDir
  }
}
