import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { getContainerRuntimeClient, type ContainerRuntimeClient } from 'testcontainers'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { NodeConfig } from '../../../nodes/config.ts'
import { stopInOrder } from '../stop-order.ts'
import { RemoteNode } from '../../../nodes/control/client.ts'
import { generateControlToken } from '../../../nodes/control/token.ts'
import { probePort } from '../../../nodes/supervisor/probes.ts'
import type { ProbeResult } from '../../../nodes/supervisor/supervisor.ts'
import type { StartedBlackhole, StartedNode } from '../backend.ts'
import { withDeadline } from '../../../nodes/util.ts'
import { TCP_BLACKHOLE_READY } from '../../host/tcp-blackhole.ts'
import { NODE_LABEL, RUN_LABEL } from '../docker-reaper.ts'
import { ignoreStatus } from '../docker-engine.ts'
import { CONTROL_PORT, LIBP2P_PORT, NODE_BINARY_IN_IMAGE, NODE_MAIN_IN_IMAGE, ensureNodeImage, ensureToxiproxyImage, nodeImageArgs } from '../docker-image.ts'
import { RemoteStartedNode, shutdownThenForce } from '../graceful-stop.ts'
import { superviseWith, type SuperviseOptions, type SupervisedNode, type SupervisingBackend } from '../supervise.ts'
import { ownerLabels, ownerState } from '../owner.ts'
import { AGENT_PORT, AGENT_SCRIPT, AgentClient } from './agent.ts'
import { FRONT_SCRIPT, TOXIPROXY_FRONT_PORT, startLoopbackForwarder, waitUntilToxiproxyAnswers } from './toxiproxy.ts'
import { findToxiproxyBinary, startToxiproxy, type ToxiproxyServer } from '../../faults/toxiproxy-server.ts'

/**
 * Every node a service of a Docker Swarm, on an attachable overlay network made for the run, placed round-robin
 * over the swarm's ready engines (a `node.id==` constraint per node, so a population really spreads). The harness
 * talks only to the manager's API (DOCKER_HOST) and to what each node's engine publishes in host mode on its swarm
 * address: the node's control channel, its libp2p port (for the supervisor) and its task's agent (agent.ts).
 *
 * A node's service is made when the node is first placed or started and lives until the run ends: its task runs the
 * agent, which holds the task's overlay address and starts, kills and restarts the node inside it. So a bootstrap
 * that is down (never started, killed, crashed) has a live address that refuses connections — a dead process on a
 * live server, as in docker mode — a kill happens when the step says, and a restart comes back at once, at the same
 * address. A node's address is its task's own address on the overlay (`/ip4/<task ip>/tcp/4001`), the only one it
 * announces; the services use `--endpoint-mode dnsrr` (no virtual IP: this needs no IPVS). Faults: Toxiproxy runs as
 * a service of the run too (toxiproxy.ts), its proxies on the overlay between the nodes.
 *
 * Security. What the engines publish is open on all their addresses (swarm has no host-IP binding for published
 * ports), so the control channel and the agent answer only a per-node token, given to the task as a swarm secret
 * (encrypted in the raft log, mounted 0400 in that task only), never on a command line or in an environment.
 *
 * Teardown removes every service, secret and network carrying the run's label, also from the process's exit hook,
 * and a new run first reaps what a killed run of this machine left (its owner process is gone).
 */

export interface SwarmBackendOptions {
  /** An image every engine already has (loaded, or pullable from a registry); default: the registry-free image. */
  image?: string
  /** Until a node's task runs and its control channel answers; default 120 s (vfs copies the image per container). */
  startTimeoutMs?: number
  /** Graceful stop budget: half for the shutdown command, half for the exit, then SIGKILL; default 10 s. */
  stopTimeoutMs?: number
  /** Deadline for the manager's API; default 15 s. */
  engineTimeoutMs?: number
  /**
   * Place nodes on at most this many engines: the manager first, then the others by ID (default: every ready one).
   * What a scale-out comparison needs (bench/swarm.ts: the same run on one engine and on two).
   */
  maxEngines?: number
}

/** A task that ended before its container ran: the engine's failure, not the node's (retried once). */
const CONTAINER_START_FAILED = /^task (failed|rejected): starting container failed/

const SECRET_TARGET = 'chiral-control-token'
const SECRET_PATH = `/run/secrets/${SECRET_TARGET}`
const POLL_MS = 250
const LOG_TAIL = 40
const AGENT_CALL_MS = 10_000

type Dockerode = ContainerRuntimeClient['container']['dockerode']

/** A swarm engine a node can be placed on, and the address the harness reaches its published ports at. */
export interface Engine {
  readonly id: string
  readonly hostname: string
  readonly addr: string
}

/** A node's place in the swarm: its service, the task holding its address, and what that task's engine publishes. */
interface Slot {
  readonly name: string
  readonly serviceId: string
  readonly serviceName: string
  readonly engine: Engine
  readonly taskId: string
  /** The task's address on the run's overlay network: the node's address for the whole run. */
  readonly ip: string
  readonly token: string
  readonly agent: AgentClient
  readonly controlUrl: string
  readonly libp2pPort: number
}

interface Task {
  ID: string
  NodeID?: string
  DesiredState?: string
  Spec?: { ContainerSpec?: { Image?: string } }
  NetworksAttachments?: Array<{ Network?: { ID?: string }, Addresses?: string[] }>
  Status?: { State?: string, Err?: string, Message?: string, Timestamp?: string, PortStatus?: { Ports?: Array<{ TargetPort?: number, PublishedPort?: number }> } }
}

const ENDED = new Set(['complete', 'failed', 'shutdown', 'rejected', 'orphaned', 'remove'])

export class SwarmNode extends RemoteStartedNode {
  readonly handle: RemoteNode
  readonly peerId: string
  readonly multiaddrs: string[]
  readonly config: NodeConfig
  readonly slot: Slot
  readonly #stopTimeoutMs: number
  readonly #onGone: (node: SwarmNode) => void
  #goneAt: number | undefined

  constructor (init: { config: NodeConfig, slot: Slot, info: { peerId: string, multiaddrs: string[] }, stopTimeoutMs: number, onGone: (node: SwarmNode) => void }) {
    super()
    this.config = init.config
    this.slot = init.slot
    this.peerId = init.info.peerId
    this.multiaddrs = init.info.multiaddrs
    this.handle = new RemoteNode({ name: init.config.name, role: init.config.role, url: init.slot.controlUrl, token: init.slot.token })
    this.#stopTimeoutMs = init.stopTimeoutMs
    this.#onGone = init.onGone
  }

  /** When the harness stopped or killed the node. */
  get goneAt (): number | undefined {
    return this.#goneAt
  }

  protected async abrupt (): Promise<void> {
    this.#goneAt = Date.now()
    try {
      await this.slot.agent.kill(AGENT_CALL_MS)
    } finally {
      this.#onGone(this)
    }
  }

  protected async graceful (): Promise<void> {
    try {
      await shutdownThenForce(this.handle, this.#stopTimeoutMs, {
        waitForExit: async ms => await this.slot.agent.waitForExit(ms),
        force: async ms => { await this.slot.agent.kill(Math.max(ms, 1_000)) }
      })
    } finally {
      this.#goneAt ??= Date.now()
      this.#onGone(this)
    }
  }
}

export class SwarmBackend implements SupervisingBackend {
  readonly mode = 'swarm' as const
  readonly transport = 'tcp' as const
  readonly runId: string
  readonly image: string
  readonly networkId: string
  readonly networkName: string
  readonly engines: readonly Engine[]
  readonly #client: ContainerRuntimeClient
  readonly #startTimeoutMs: number
  readonly #stopTimeoutMs: number
  readonly #engineTimeoutMs: number
  readonly #slots = new Map<string, Promise<Slot>>()
  readonly #nodes = new Set<SwarmNode>()
  readonly #supervised = new Set<SupervisedNode>()
  readonly #handles = new Set<RemoteNode>()
  /** Every node of the run (started, placed or a blackhole) and the engine its task runs on, as the manager says. */
  readonly #placed: Array<{ node: string, engine: Engine }> = []
  readonly #exitHook: () => void
  #serial = 0
  #stateDir: Promise<string> | undefined
  #disposed: Promise<void> | undefined

  /**
   * Finds the swarm's manager and its ready engines, makes sure the image exists on the manager (workers must have
   * it too: see the README), reaps a killed run's leftovers and creates the run's overlay network.
   */
  static async create (options: SwarmBackendOptions = {}): Promise<SwarmBackend> {
    process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true'
    const engineTimeoutMs = options.engineTimeoutMs ?? 15_000
    const client = await withDeadline(getContainerRuntimeClient(), engineTimeoutMs, `no Docker engine answered within ${engineTimeoutMs} ms`)
    const docker = client.container.dockerode
    const info = await withDeadline(docker.info(), engineTimeoutMs, 'the engine did not answer docker info') as { Swarm?: { LocalNodeState?: string, ControlAvailable?: boolean } }
    if (info.Swarm?.ControlAvailable !== true) {
      throw new Error(`swarm mode needs a Docker Swarm manager, and the engine at DOCKER_HOST=${process.env.DOCKER_HOST ?? 'unset'} is ${info.Swarm?.LocalNodeState === 'active' ? 'a swarm worker' : 'not in a swarm'}: point DOCKER_HOST at a manager (docker swarm init; docker swarm join on the other machines), or make a two-engine swarm on this machine with scripts/setup-swarm.sh up`)
    }
    const ready = await readyEngines(docker)
    if (ready.length === 0) throw new Error('the swarm has no ready, active engine to place nodes on (docker node ls)')
    const managerId = (info as { Swarm?: { NodeID?: string } }).Swarm?.NodeID
    const engines = options.maxEngines == null
      ? ready
      : [...ready.filter(e => e.id === managerId), ...ready.filter(e => e.id !== managerId)].slice(0, Math.max(1, options.maxEngines))
    const image = options.image ?? (await ensureNodeImage({ client })).tag
    await reapOrphans(docker)
    const runId = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
    const networkName = `chiral-sim-${runId}`
    const network = await docker.createNetwork({ Name: networkName, Driver: 'overlay', Attachable: true, CheckDuplicate: true, Labels: runLabels(runId) } as Parameters<Dockerode['createNetwork']>[0])
    return new SwarmBackend(client, { runId, image, networkId: network.id, networkName, engines, options })
  }

  /** Whether a swarm manager answers, and if not why: tests skip (or, under CI, fail) with this reason. */
  static async available (timeoutMs = 10_000): Promise<{ ok: true, engines: Engine[] } | { ok: false, reason: string }> {
    process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true'
    try {
      const client = await withDeadline(getContainerRuntimeClient(), timeoutMs, `no answer within ${timeoutMs} ms`)
      const info = await withDeadline(client.container.dockerode.info(), timeoutMs, `no answer to info within ${timeoutMs} ms`) as { Swarm?: { ControlAvailable?: boolean } }
      if (info.Swarm?.ControlAvailable !== true) return { ok: false, reason: `the engine at DOCKER_HOST=${process.env.DOCKER_HOST ?? 'unset'} is not a swarm manager (scripts/setup-swarm.sh up)` }
      return { ok: true, engines: await readyEngines(client.container.dockerode) }
    } catch (err) {
      return { ok: false, reason: `no Docker engine (DOCKER_HOST=${process.env.DOCKER_HOST ?? 'unset'}): ${(err as Error).message}` }
    }
  }

  private constructor (client: ContainerRuntimeClient, init: { runId: string, image: string, networkId: string, networkName: string, engines: Engine[], options: SwarmBackendOptions }) {
    this.#client = client
    this.runId = init.runId
    this.image = init.image
    this.networkId = init.networkId
    this.networkName = init.networkName
    this.engines = init.engines
    this.#startTimeoutMs = init.options.startTimeoutMs ?? 120_000
    this.#stopTimeoutMs = init.options.stopTimeoutMs ?? 10_000
    this.#engineTimeoutMs = init.options.engineTimeoutMs ?? 15_000
    this.#exitHook = () => { this.#removeSynchronously() }
    process.on('exit', this.#exitHook)
  }

  get nodes (): ReadonlySet<SwarmNode> {
    return this.#nodes
  }

  /** Every node's service so far and the engine its task runs on, in the order they were made. */
  get placed (): ReadonlyArray<{ node: string, engine: Engine }> {
    return this.#placed
  }

  /** The node's service, its agent holding the task's overlay address, the node's, until the node starts. */
  async place (config: NodeConfig, signal: AbortSignal): Promise<{ listen: string[] }> {
    return { listen: [nodeAddress(await this.#slot(config.name, signal))] }
  }

  async startNode (config: NodeConfig, signal: AbortSignal): Promise<SwarmNode> {
    this.#assertOpen()
    const slot = await this.#slot(config.name, signal)
    const address = nodeAddress(slot)
    if (config.listen != null && (config.listen.length !== 1 || config.listen[0] !== address)) {
      throw new Error(`swarm backend: node "${config.name}" is reached at ${address} (from place()); the config asks for ${config.listen.join(', ')}`)
    }
    // It binds every address of its task (its engine's published port reaches it on another interface than the
    // overlay), but announces the overlay's only: the one address the others can reach, and the one a fault run's
    // peers refuse to dial around their proxies (sim/runner/link-wiring.ts).
    const effective: NodeConfig = { ...config, transport: 'tcp', listen: [`/ip4/0.0.0.0/tcp/${LIBP2P_PORT}`], announce: config.announce ?? [address] }
    const where = `service ${slot.serviceName} on ${describe(slot.engine)}`
    try {
      await slot.agent.start([NODE_MAIN_IN_IMAGE, ...nodeImageArgs(effective, SECRET_PATH)], AGENT_CALL_MS)
    } catch (err) {
      throw new Error(`node "${config.name}" (${where}) did not start: ${(err as Error).message}${await this.#logsSuffix(slot)}`)
    }
    // The control channel says where the node is, and proves the engine's published port reaches it.
    const probe = new RemoteNode({ name: config.name, role: config.role, url: slot.controlUrl, token: slot.token, requestTimeoutMs: 10_000 })
    let info: { peerId: string, multiaddrs: string[] }
    try {
      await RemoteNode.waitUntilReady(slot.controlUrl, { token: slot.token, signal, timeoutMs: this.#startTimeoutMs })
      info = await probe.call('info', {}, { signal })
    } catch (err) {
      const logs = await this.#logsSuffix(slot)
      await slot.agent.kill(AGENT_CALL_MS).catch(() => {})
      throw new Error(`node "${config.name}" started (${where}) but its control channel at ${slot.controlUrl} does not answer: ${(err as Error).message}${logs}`)
    } finally {
      await probe.close()
    }
    const node = new SwarmNode({
      config: effective,
      slot,
      info,
      stopTimeoutMs: this.#stopTimeoutMs,
      onGone: gone => { this.#nodes.delete(gone) }
    })
    this.#nodes.add(node)
    this.#handles.add(node.handle)
    return node
  }

  /** External bootstraps would run on this machine, which the swarm's tasks on other engines cannot reach. */
  async hostAddress (): Promise<string> {
    throw new Error('swarm mode runs nodes on the swarm\'s engines, possibly other machines: an external bootstrap runs as a process on this machine, which they cannot reach. Run such scenarios with --mode docker, process or tcp')
  }

  /**
   * Toxiproxy as a service of the run on the manager's engine (toxiproxy.ts): its proxies listen on its task's
   * overlay address, between nodes on any engines; the harness reaches its API through the token-guarded front
   * the manager's engine publishes, via a loopback forwarder. Removed with the run, or when the server is closed.
   */
  async startToxiproxy (signal: AbortSignal): Promise<{ server: ToxiproxyServer, listenHost: string, front: string }> {
    this.#assertOpen()
    const binary = findToxiproxyBinary()
    if (binary == null) throw new Error('swarm mode runs the fault proxies in an image made from this machine\'s toxiproxy-server binary, and none was found (TOXIPROXY_SERVER, toxiproxy-server on PATH, .toxiproxy/bin/): run bash scripts/setup-toxiproxy.sh (needs Go >= 1.23). TOXIPROXY_URL does not apply: a server on this machine cannot sit between the swarm\'s engines')
    const image = (await ensureToxiproxyImage({ client: this.#client, toxiproxyBinary: binary })).tag
    const info = await withDeadline(this.#docker.info(), this.#engineTimeoutMs, 'the manager did not answer docker info') as { Swarm?: { NodeID?: string } }
    const manager = this.engines.find(e => e.id === info.Swarm?.NodeID)
    if (manager == null) throw new Error(`the manager's engine (${info.Swarm?.NodeID ?? 'unknown'}) is not a ready, active swarm engine, and the swarm's Toxiproxy runs there (its image is built on it)`)
    const made = await this.#createService({ name: 'toxiproxy', image, engine: manager, script: FRONT_SCRIPT, ports: [TOXIPROXY_FRONT_PORT], signal })
    const front = `http://${manager.addr}:${publishedPort(made.task, TOXIPROXY_FRONT_PORT)}`
    const forwarder = await startLoopbackForwarder(front, made.token, 20_000)
    const release = async (): Promise<void> => {
      await forwarder.close()
      await this.#docker.getService(made.serviceId).remove().catch(ignoreStatus(404))
    }
    let inner: ToxiproxyServer
    try {
      await waitUntilToxiproxyAnswers(forwarder.url, this.#startTimeoutMs, signal)
      inner = await startToxiproxy({ url: forwarder.url, signal, startTimeoutMs: this.#engineTimeoutMs })
    } catch (err) {
      const logs = await this.#logsSuffix(made)
      await release().catch(() => {})
      throw new Error(`the run's Toxiproxy (service ${made.serviceName} on ${describe(manager)}) does not answer at ${front}: ${(err as Error).message}${logs}`)
    }
    let closed: Promise<void> | undefined
    const close = async (): Promise<void> => {
      closed ??= (async () => { try { await inner.close() } finally { await release() } })()
      await closed
    }
    return { server: { ...inner, close, [Symbol.asyncDispose]: close }, listenHost: made.ip, front }
  }

  /** A listener in the node's task that accepts and never answers (the plan's hung bootstrap). */
  async startBlackhole (name: string, signal: AbortSignal): Promise<StartedBlackhole> {
    const slot = await this.#slot(name, signal)
    await slot.agent.start(['--input-type=module-typescript', '-e', blackholeProgram()], AGENT_CALL_MS)
    // Listening once its engine's published libp2p port accepts: the runner dials at once.
    const deadline = Date.now() + this.#startTimeoutMs
    while (!(await probePort(slot.engine.addr, slot.libp2pPort, signal)).ok) {
      if (Date.now() >= deadline) throw new Error(`blackhole "${name}" (service ${slot.serviceName}) did not listen within ${this.#startTimeoutMs} ms${await this.#logsSuffix(slot)}`)
      await sleep(POLL_MS)
    }
    // A real-looking /p2p/ suffix lets the dialer get as far as the security handshake, as with sim/host/blackhole.ts.
    const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    let closed: Promise<void> | undefined
    const hole: StartedBlackhole = {
      multiaddr: `${nodeAddress(slot)}/p2p/${peerId}`,
      close: async () => {
        closed ??= slot.agent.kill(AGENT_CALL_MS).then(() => {})
        await closed
      },
      [Symbol.asyncDispose]: async () => { await hole.close() }
    }
    return hole
  }

  /**
   * Puts a running node under a Supervisor. Check 1 asks the task's agent whether the node process runs, check 2
   * connects to the libp2p port its engine publishes, check 3 pings it there; a restart starts the node again in
   * its task: same engine, same address, same name.
   */
  async supervise (node: StartedNode, options: SuperviseOptions = {}): Promise<SupervisedNode> {
    if (!(node instanceof SwarmNode) || !this.#nodes.has(node)) throw new Error('supervise: not a running node of this swarm backend')
    const historyFile = options.historyFile ?? path.join(await this.#state(), `${node.config.name}.supervisor.json`)
    const config: NodeConfig = { ...node.config, listen: [nodeAddress(node.slot)] }
    return await superviseWith<SwarmNode>(node, config, {
      checkProcess: async n => await this.#processProbe(n),
      checkPort: async (n, signal) => await probePort(n.slot.engine.addr, n.slot.libp2pPort, signal),
      pingAddress: n => `/ip4/${n.slot.engine.addr}/tcp/${n.slot.libp2pPort}/p2p/${n.peerId}`,
      endedAt: n => n.goneAt,
      startNode: async (config, signal) => await this.startNode(config, signal)
    }, historyFile, options, this.#supervised)
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    this.#disposed ??= this.#dispose()
    await this.#disposed
  }

  async #dispose (): Promise<void> {
    await stopInOrder({ supervised: this.#supervised, nodes: this.#nodes })
    await Promise.allSettled([...this.#handles].map(async h => { await h.close() }))
    let failure: unknown
    try {
      await removeRun(this.#docker, this.runId)
    } catch (err) {
      failure = err
    }
    process.off('exit', this.#exitHook)
    this.#handles.clear()
    this.#slots.clear()
    this.#nodes.clear()
    this.#supervised.clear()
    if (this.#stateDir != null) await rm(await this.#stateDir, { recursive: true, force: true })
    if (failure != null) throw new Error(`swarm backend: could not remove everything of run ${this.runId}: ${(failure as Error).message}`)
  }

  get #docker (): Dockerode {
    return this.#client.container.dockerode
  }

  #assertOpen (): void {
    if (this.#disposed != null) throw new Error('swarm backend is disposed')
  }

  #labels (name: string): Record<string, string> {
    return { ...runLabels(this.runId), [NODE_LABEL]: name }
  }

  /** The node's slot, made on first use; round-robin over the engines in that order (the scenario's order). */
  async #slot (name: string, signal: AbortSignal): Promise<Slot> {
    this.#assertOpen()
    let slot = this.#slots.get(name)
    if (slot == null) {
      slot = this.#createSlot(name, this.engines[this.#slots.size % this.engines.length]!, signal)
      this.#slots.set(name, slot)
      // A failed slot must not poison the name: the next start tries again (its service goes with the run's label).
      slot.catch(() => { this.#slots.delete(name) })
    }
    return await slot
  }

  async #createSlot (name: string, engine: Engine, signal: AbortSignal): Promise<Slot> {
    const made = await this.#createService({ name, image: this.image, engine, script: AGENT_SCRIPT, ports: [CONTROL_PORT, LIBP2P_PORT, AGENT_PORT], signal })
    const agent = new AgentClient(`http://${engine.addr}:${publishedPort(made.task, AGENT_PORT)}`, made.token)
    try {
      await agent.waitUntilUp(this.#startTimeoutMs, signal)
    } catch (err) {
      throw new Error(`the service ${made.serviceName} for node "${name}" runs on ${describe(engine)}, but: ${(err as Error).message}${await this.#logsSuffix(made)}`)
    }
    this.#placed.push({ node: name, engine })
    return {
      name,
      serviceId: made.serviceId,
      serviceName: made.serviceName,
      engine,
      taskId: made.task.ID,
      ip: made.ip,
      token: made.token,
      agent,
      controlUrl: `http://${engine.addr}:${publishedPort(made.task, CONTROL_PORT)}`,
      libp2pPort: publishedPort(made.task, LIBP2P_PORT)
    }
  }

  /**
   * A service of the run pinned to `engine`, running `script` with the image's Node binary, with a fresh token as
   * its swarm secret, on the run's overlay network, publishing `ports` in host mode; once its task runs.
   */
  async #createService (init: { name: string, image: string, engine: Engine, script: string, ports: number[], signal: AbortSignal, retried?: boolean }): Promise<{ serviceId: string, serviceName: string, token: string, task: Task, ip: string }> {
    const { name, engine } = init
    // Service names are DNS labels: lower case, at most 63 characters; the serial keeps "A" and "a" apart.
    const serviceName = `cs-${this.runId}-${++this.#serial}-${name.toLowerCase().replace(/[^a-z0-9-]+/g, '-')}`.slice(0, 63).replace(/-+$/, '')
    const token = generateControlToken()
    const secret = await this.#docker.createSecret({ Name: `${serviceName}-token`, Data: Buffer.from(`${token}\n`).toString('base64'), Labels: this.#labels(name) })
    const spec = {
      Name: serviceName,
      Labels: this.#labels(name),
      TaskTemplate: {
        ContainerSpec: {
          Image: init.image,
          Labels: this.#labels(name),
          Command: [NODE_BINARY_IN_IMAGE, '-e', init.script],
          Args: [],
          // A path, not the token: the environment shows in `docker inspect`.
          Env: [`CHIRAL_AGENT_TOKEN_FILE=${SECRET_PATH}`],
          Secrets: [{ SecretID: secret.id, SecretName: `${serviceName}-token`, File: { Name: SECRET_TARGET, UID: '0', GID: '0', Mode: 0o400 } }],
          // The orchestrator only stops a task to remove it, at the end of the run: no goodbye is owed then.
          StopSignal: 'SIGKILL'
        },
        Placement: { Constraints: [`node.id==${engine.id}`] },
        // A dead task is a dead address; bringing it back elsewhere would be a different node: the run says so.
        RestartPolicy: { Condition: 'none' },
        Networks: [{ Target: this.networkId }]
      },
      Mode: { Replicated: { Replicas: 1 } },
      EndpointSpec: {
        Mode: 'dnsrr',
        // Host mode: the routing mesh needs IPVS. No PublishedPort: each engine picks a free one.
        Ports: init.ports.map(p => ({ Protocol: 'tcp', TargetPort: p, PublishMode: 'host' }))
      }
    }
    const created = await this.#docker.createService(spec as object as Parameters<Dockerode['createService']>[1]) as { id?: string, ID?: string }
    const serviceId = created.id ?? created.ID!
    let task: Task
    try {
      task = await this.#waitForTask(serviceId, init.signal)
    } catch (err) {
      // An engine can fail to start a container it was given (moby, many containers starting at once: "unable to
      // remount dir as readonly … device or resource busy" on the secrets mount). That task never ran and nobody
      // knows its address yet, so the node is made once more, as a new service; the failed one goes first.
      if (init.retried !== true && CONTAINER_START_FAILED.test((err as Error).message)) {
        await this.#docker.getService(serviceId).remove().catch(() => {})
        return await this.#createService({ ...init, retried: true })
      }
      throw new Error(`the service ${serviceName} for "${name}" on ${describe(engine)} did not start: ${(err as Error).message}${await this.#logsSuffix({ serviceId })}`)
    }
    // The constraint decides; the manager's word on where the task runs is what the run records.
    if (task.NodeID !== engine.id) throw new Error(`the service ${serviceName} for "${name}" was pinned to ${describe(engine)} but its task runs on engine ${task.NodeID ?? 'unknown'}`)
    const ip = task.NetworksAttachments?.find(a => a.Network?.ID === this.networkId)?.Addresses?.[0]?.replace(/\/\d+$/, '')
    if (ip == null) throw new Error(`the service ${serviceName} for "${name}" runs on ${describe(engine)}, but the manager names no address of its task on the run's network ${this.networkName}`)
    return { serviceId, serviceName, token, task, ip }
  }

  /** The service's task once it runs; a task that ended says why (a missing image names the fix). */
  async #waitForTask (serviceId: string, signal: AbortSignal): Promise<Task> {
    const deadline = Date.now() + this.#startTimeoutMs
    for (;;) {
      signal.throwIfAborted()
      const tasks = await this.#docker.listTasks({ filters: { service: [serviceId] } }) as Task[]
      const running = tasks.find(t => t.Status?.State === 'running' && t.DesiredState === 'running')
      if (running != null) return running
      const ended = tasks.find(t => t.Status?.State != null && ENDED.has(t.Status.State))
      if (ended != null) {
        const why = ended.Status?.Err ?? ended.Status?.Message ?? ended.Status?.State
        const hint = /no such image|not found|pull access denied/i.test(why ?? '') ? ` — every engine must have ${this.image}: load it on each (docker save ${this.image} | docker -H <engine> load; here scripts/setup-swarm.sh load ${this.image}) or push it to a registry they can pull from` : ''
        throw new Error(`task ${ended.Status?.State}: ${why}${hint}`)
      }
      if (Date.now() >= deadline) {
        const last = tasks.at(-1)
        throw new Error(`no running task within ${this.#startTimeoutMs} ms (last state: ${last?.Status?.State ?? 'no task yet'}${last?.Status?.Err != null ? `, ${last.Status.Err}` : ''})`)
      }
      await sleep(POLL_MS)
    }
  }

  /** The service's recent output (the agent's and its children's), from whichever engine runs it. */
  async #logs (slot: { serviceId: string }): Promise<string> {
    try {
      const raw = await withDeadline(this.#docker.getService(slot.serviceId).logs({ stdout: true, stderr: true, tail: LOG_TAIL, follow: false }) as unknown as Promise<Buffer>, this.#engineTimeoutMs, 'service logs did not answer')
      return demux(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw)))
    } catch {
      return ''
    }
  }

  async #logsSuffix (slot: { serviceId: string }): Promise<string> {
    const text = (await this.#logs(slot)).trim()
    return text === '' ? '' : `; its output:\n${text}`
  }

  /** The node process as its task's agent sees it; the task's state from the manager when the agent is gone too. */
  async #processProbe (node: SwarmNode): Promise<ProbeResult> {
    if (node.goneAt != null) return { ok: false, detail: 'the node was stopped or killed', since: node.goneAt }
    try {
      const status = await node.slot.agent.status(5_000)
      if (status.running) return { ok: true, detail: `node process running in task ${node.slot.taskId.slice(0, 12)} on ${describe(node.slot.engine)}` }
      const how = status.ended?.signal ?? `exit code ${status.ended?.code ?? 'unknown'}`
      return { ok: false, detail: `node process in task ${node.slot.taskId.slice(0, 12)} ended (${how})`, ...(status.ended != null ? { since: status.ended.at } : {}) }
    } catch { /* the agent is gone with its task: ask the manager */ }
    try {
      const task = await this.#docker.getTask(node.slot.taskId).inspect() as Task
      const at = Date.parse(task.Status?.Timestamp ?? '')
      return { ok: false, detail: `task ${node.slot.taskId.slice(0, 12)} ${task.Status?.State ?? 'unknown'}, its agent does not answer${task.Status?.Err != null ? ` (${task.Status.Err})` : ''}`, ...(Number.isFinite(at) ? { since: at } : {}) }
    } catch (err) {
      return { ok: false, detail: `task ${node.slot.taskId.slice(0, 12)} is gone: ${(err as Error).message}` }
    }
  }

  async #state (): Promise<string> {
    this.#stateDir ??= mkdtemp(path.join(tmpdir(), 'chiral-sim-swarm-'))
    return await this.#stateDir
  }

  /** The 'exit' hook: no promise settles any more, so the docker CLI removes the run's objects by label. */
  #removeSynchronously (): void {
    const label = `label=${RUN_LABEL}=${this.runId}`
    const run = (args: string[]): string => {
      try { return execFileSync('docker', args, { encoding: 'utf8', timeout: 15_000 }) } catch { return '' }
    }
    for (const kind of ['service', 'secret', 'network']) {
      const ids = run([kind, 'ls', '-q', '--filter', label]).split('\n').filter(Boolean)
      // The network is in use until the services' tasks are gone.
      if (kind === 'network' && ids.length > 0) execFileSync('sleep', ['3'])
      if (ids.length > 0) run([kind, 'rm', ...ids])
    }
  }
}

/**
 * The harness's own blackhole (sim/host/tcp-blackhole.ts, which imports only node:net) as one program for `node -e`:
 * a service has no file to copy in, so its source travels in the agent's start request.
 */
function blackholeProgram (): string {
  const source = readFileSync(new URL('../../host/tcp-blackhole.ts', import.meta.url), 'utf8')
  const library = source.slice(0, source.indexOf('if (import.meta.main)'))
  return `${library}\nawait holdTcp('0.0.0.0', ${LIBP2P_PORT})\nconsole.log(${JSON.stringify(TCP_BLACKHOLE_READY)})\n`
}

function runLabels (runId: string): Record<string, string> {
  return { [RUN_LABEL]: runId, ...ownerLabels() }
}

/** The task's overlay address, stable for the run (the agent holds it while the node restarts). */
function nodeAddress (slot: Slot): string {
  return `/ip4/${slot.ip}/tcp/${LIBP2P_PORT}`
}

function describe (engine: Engine): string {
  return `engine ${engine.hostname} (${engine.id.slice(0, 12)}, ${engine.addr})`
}

function publishedPort (task: Task, target: number): number {
  const port = task.Status?.PortStatus?.Ports?.find(p => p.TargetPort === target)?.PublishedPort
  if (port == null) throw new Error(`task ${task.ID} publishes no port for ${target}`)
  return port
}

async function readyEngines (docker: Dockerode): Promise<Engine[]> {
  const nodes = await docker.listNodes() as Array<{ ID: string, Description?: { Hostname?: string }, Status?: { State?: string, Addr?: string }, Spec?: { Availability?: string }, ManagerStatus?: { Addr?: string } }>
  return nodes
    .filter(n => n.Status?.State === 'ready' && n.Spec?.Availability === 'active')
    .map(n => {
      // A manager may report 0.0.0.0 as its own address; its raft address names the interface it advertises.
      const addr = n.Status?.Addr != null && n.Status.Addr !== '0.0.0.0' ? n.Status.Addr : (n.ManagerStatus?.Addr ?? '').replace(/:\d+$/, '')
      return { id: n.ID, hostname: n.Description?.Hostname ?? n.ID, addr }
    })
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}

/** Services first (their tasks hold the network and the secrets), then secrets and the network once released. */
async function removeRun (docker: Dockerode, runId: string, deadlineMs = 60_000): Promise<void> {
  const filters = { label: [`${RUN_LABEL}=${runId}`] }
  const services = await docker.listServices({ filters }) as Array<{ ID: string }>
  await Promise.allSettled(services.map(async s => { await docker.getService(s.ID).remove().catch(ignoreStatus(404)) }))
  const deadline = Date.now() + deadlineMs
  for (;;) {
    const secrets = await docker.listSecrets({ filters }) as Array<{ ID: string }>
    const networks = await docker.listNetworks({ filters }) as Array<{ Id: string }>
    if (secrets.length === 0 && networks.length === 0) return
    const results = await Promise.allSettled([
      ...secrets.map(async s => { await docker.getSecret(s.ID).remove().catch(ignoreStatus(404)) }),
      ...networks.map(async n => { await docker.getNetwork(n.Id).remove().catch(ignoreStatus(404)) })
    ])
    const failed = results.find(r => r.status === 'rejected')
    if (failed == null) continue
    if (Date.now() >= deadline) throw (failed as PromiseRejectedResult).reason
    await sleep(500)
  }
}

export interface SwarmReapResult {
  /** Names removed, by kind. */
  services: string[]
  secrets: string[]
  configs: string[]
  networks: string[]
  /** Run ids left alone because their owner's liveness cannot be judged from here (see `all`). */
  unknownRuns: string[]
  /** Failures to remove something that should go (it stays for the next attempt). */
  errors: string[]
}

/**
 * What swarm runs whose harness died left on the swarm (services, secrets, configs, networks with the run label):
 * removed when the owner labels name a process of this machine that is gone, or, with `all`, when they name none
 * that can be judged from here (another machine's harness, an older chiral-sim's). A live run's are never touched.
 * Needs a manager. Every swarm run calls it before it starts, and `chiral-sim clean` on demand.
 */
export async function reapAbandonedSwarmRuns (docker: Dockerode, options: { all?: boolean, deadlineMs?: number } = {}): Promise<SwarmReapResult> {
  const filters = { label: [RUN_LABEL] }
  type Labelled = { ID?: string, Id?: string, Name?: string, Labels?: Record<string, string>, Spec?: { Name?: string, Labels?: Record<string, string> } }
  const objects = {
    services: await docker.listServices({ filters }) as Labelled[],
    secrets: await docker.listSecrets({ filters }) as Labelled[],
    configs: await docker.listConfigs({ filters }) as Labelled[],
    // Only the swarm's own (overlay) networks: a docker-mode run's bridge network is docker-reaper.ts's.
    networks: (await docker.listNetworks({ filters }) as Array<Labelled & { Scope?: string }>).filter(n => n.Scope === 'swarm')
  }
  const result: SwarmReapResult = { services: [], secrets: [], configs: [], networks: [], unknownRuns: [], errors: [] }
  const doomed = new Set<string>()
  const unknown = new Set<string>()
  for (const o of Object.values(objects).flat()) {
    const labels = o.Spec?.Labels ?? o.Labels
    const run = labels?.[RUN_LABEL]
    if (run == null) continue
    const state = ownerState(labels)
    if (state === 'dead' || (state === 'unknown' && options.all === true)) doomed.add(run)
    else if (state === 'unknown') unknown.add(run)
  }
  const name = (o: Labelled): string => o.Spec?.Name ?? o.Name ?? o.ID ?? o.Id ?? '?'
  const ofDoomed = (list: Labelled[]): Labelled[] => list.filter(o => doomed.has((o.Spec?.Labels ?? o.Labels)?.[RUN_LABEL] ?? ''))
  // Services first: their tasks hold the secrets, configs and network until they are gone.
  for (const s of ofDoomed(objects.services)) {
    try {
      await docker.getService(s.ID!).remove().catch(ignoreStatus(404))
      result.services.push(name(s))
    } catch (err) {
      result.errors.push(`service ${name(s)}: ${(err as Error).message}`)
    }
  }
  type Kind = 'secrets' | 'configs' | 'networks'
  const handle = (kind: Kind, o: Labelled): { remove: () => Promise<unknown>, inspect: () => Promise<unknown> } =>
    kind === 'secrets' ? docker.getSecret(o.ID!) : kind === 'configs' ? docker.getConfig(o.ID!) : docker.getNetwork(o.Id!)
  let pending = (['secrets', 'configs', 'networks'] as const).flatMap(kind => ofDoomed(objects[kind]).map(o => ({ kind, name: name(o), object: handle(kind, o) })))
  const deadline = Date.now() + (options.deadlineMs ?? 60_000)
  while (pending.length > 0) {
    const last = Date.now() >= deadline
    const failed: typeof pending = []
    for (const entry of pending) {
      try {
        await entry.object.remove().catch(ignoreStatus(404))
        // A network whose tasks are still going answers its removal with "not found" on the manager, and stays.
        if (await entry.object.inspect().then(() => true, ignoreStatus(404)) === true) throw new Error('still there after its removal')
        result[entry.kind].push(entry.name)
      } catch (err) {
        // In use until the removed services' tasks are gone (seconds): retried until the deadline.
        if (last) result.errors.push(`${entry.kind.slice(0, -1)} ${entry.name}: ${(err as Error).message}`)
        else failed.push(entry)
      }
    }
    pending = last ? [] : failed
    if (pending.length > 0) await sleep(500)
  }
  result.unknownRuns = [...unknown].filter(r => !doomed.has(r))
  return result
}

/** A killed run of this machine (its owner process is gone) leaves services, secrets and a network: remove them. */
async function reapOrphans (docker: Dockerode): Promise<void> {
  await reapAbandonedSwarmRuns(docker).catch(() => {})
}

/** Service logs come multiplexed (8-byte frame headers) when the service has no TTY. */
function demux (raw: Buffer): string {
  let out = ''
  let i = 0
  while (i + 8 <= raw.length && (raw[i] === 1 || raw[i] === 2) && raw[i + 1] === 0) {
    const size = raw.readUInt32BE(i + 4)
    out += raw.subarray(i + 8, i + 8 + size).toString('utf8')
    i += 8 + size
  }
  return i === 0 ? raw.toString('utf8') : out
}
