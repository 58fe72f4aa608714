import { execFile } from 'node:child_process'
import { connect } from 'node:net'
import { networkInterfaces } from 'node:os'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { candidateRange } from '../host/free-port.ts'
import { getContainerRuntimeClient } from 'testcontainers'
import { NodeConfigSchema, type NodeConfig } from '../../nodes/config.ts'
import type { SupervisorEvent } from '../../nodes/supervisor/schemas.ts'
import { DockerBackend } from './docker.ts'
import type { DockerNode } from './docker-node.ts'
import { RUN_LABEL } from './docker-reaper.ts'
import { ensureNodeImage, ensurePauseImage, removeImage } from './docker-image.ts'
import type { StartedNode } from './backend.ts'

const execFileAsync = promisify(execFile)

/**
 * Needs a Docker engine (local or DOCKER_HOST). Without one the suite is skipped with the reason in its title,
 * except under CI=true, where a missing engine is a broken CI machine and must fail.
 */
const engine = await DockerBackend.available()
const requireEngine = process.env.CI === 'true'

describe.runIf(!engine.ok && requireEngine)('DockerBackend on CI', () => {
  it('needs a Docker engine under CI=true', () => {
    expect.fail(engine.ok ? 'unreachable' : engine.reason)
  })
})

describe.skipIf(!engine.ok)(`DockerBackend${engine.ok ? '' : ` (skipped: ${engine.reason})`}`, () => {
  let backend: DockerBackend | undefined
  /** Images this test built: removed afterwards. Images that were already there belong to someone else. */
  const builtImages: string[] = []
  let image = ''
  const run = `dt-${process.pid}-${Date.now().toString(36)}`

  beforeAll(async () => {
    const node = await ensureNodeImage()
    const pause = await ensurePauseImage()
    for (const i of [node, pause]) if (i?.built === true) builtImages.push(i.tag)
    image = node.tag
    backend = await DockerBackend.create({ image })
  }, 180_000)

  afterAll(async () => {
    const client = await getContainerRuntimeClient()
    try {
      if (backend != null) {
        await backend[Symbol.asyncDispose]()
        // Everything the run created is gone: containers by label, the network by name.
        const left = await client.container.dockerode.listContainers({ all: true, filters: { label: [`${RUN_LABEL}=${backend.runId}`] } })
        expect(left.map(c => c.Names)).toEqual([])
        const networks = await client.container.dockerode.listNetworks({ filters: { name: [backend.network.getName()] } })
        expect(networks).toEqual([])
      }
    } finally {
      for (const tag of builtImages) await removeImage(tag, client)
    }
  }, 120_000)

  function config (name: string, role: 'bootstrap' | 'peer', extra: Partial<NodeConfig> = {}): NodeConfig {
    return NodeConfigSchema.parse({ name, role, transport: 'tcp', identitySeed: `${run}/${name}`, ...extra })
  }

  it('runs a bootstrap and two peers as containers: discovery both ways over the run network, kill refuses', async () => {
    const b = backend!
    const signal = AbortSignal.timeout(170_000)
    const bootConfig = config('boot', 'bootstrap')
    const { listen } = await b.place(bootConfig, signal)
    expect(listen[0]).toMatch(/^\/ip4\/\d+\.\d+\.\d+\.\d+\/tcp\/4001$/)
    expect(listen[0]).not.toMatch(/127\.0\.0\.1/)
    const boot = await b.startNode({ ...bootConfig, listen }, signal)
    const bootAddr = `${listen[0]}/p2p/${boot.peerId}`
    expect(boot.multiaddrs).toEqual([bootAddr])

    const peers: StartedNode[] = []
    for (const name of ['peer-a', 'peer-c']) peers.push(await b.startNode(config(name, 'peer', { bootstrapAddrs: [bootAddr] }), signal))
    const [a, c] = peers as [DockerNode, DockerNode]
    // Each node announces its own container IP on the run network, and the harness reaches it through a mapped port.
    expect(a.multiaddrs[0]).not.toBe(c.multiaddrs[0])
    expect(a.slot.controlUrl).not.toMatch(/:7070$/)

    for (const peer of [a, c]) {
      const result = await peer.handle.call('connectWithTimeout', {}, { signal })
      expect(result.success, JSON.stringify(result.error)).toBe(true)
    }
    const cSeesA = await c.handle.call('waitForBidirectionalDiscovery', { peerIds: [a.peerId], timeoutMs: 20_000 }, { signal })
    const aSeesC = await a.handle.call('waitForBidirectionalDiscovery', { peerIds: [c.peerId], timeoutMs: 20_000 }, { signal })
    expect(cSeesA.missing).toEqual([])
    expect(aSeesC.missing).toEqual([])
    const aInspect = await a.handle.call('inspect', {})
    expect(aInspect.connections.map(x => x.remoteAddr).some(addr => addr.startsWith(c.multiaddrs[0]!.split('/tcp/')[0]!))).toBe(true)

    await boot.kill()
    // The pause container keeps the bootstrap's IP: the dial reaches a live host with nothing listening.
    for (const peer of [a, c]) {
      const result = await peer.handle.call('connectWithTimeout', { timeoutMs: 5_000 }, { signal })
      expect(result.success).toBe(false)
      expect(result.error?.category, JSON.stringify(result.error)).toBe('refused')
    }
    await a.stop()
    await c.stop()
  }, 180_000)

  it('supervises a bootstrap container: killed, detected, restarted at the same address, answers again', async () => {
    const b = backend!
    const signal = AbortSignal.timeout(170_000)
    const bootConfig = config('sup-boot', 'bootstrap', { timing: { ...config('x', 'peer').timing, timeScale: 0.01 } })
    const { listen } = await b.place(bootConfig, signal)
    const boot = await b.startNode({ ...bootConfig, listen }, signal)
    const events: SupervisorEvent[] = []
    const restarted: StartedNode[] = []
    const supervised = await b.supervise(boot, {
      // Ping deadline 2 s (real time, never scaled); restarts get the default 30 s.
      supervisor: { pingTimeoutMs: 2_000 },
      onEvent: e => { events.push(e) },
      onRestarted: n => { restarted.push(n) }
    })
    await until(() => events.some(e => e.type === 'check' && e.ok), signal)
    await boot.kill()
    await until(() => events.some(e => e.type === 'recovered'), signal)
    expect(restarted).toHaveLength(1)
    expect(supervised.current.peerId).toBe(boot.peerId)
    expect(supervised.current.multiaddrs).toEqual(boot.multiaddrs)
    expect((supervised.current as DockerNode).slot.controlUrl).toBe((boot as DockerNode).slot.controlUrl)
    expect(supervised.supervisor.recoveries()[0]).toMatchObject({ automatic: true, failedAtExact: true, restarts: 1 })
    expect((await supervised.current.handle.call('info', {})).peerId).toBe(boot.peerId)
    await supervised.stop()
    await supervised.current.stop()
  }, 180_000)

  it('reports a node container that exits at start with its output, and removes it', async () => {
    const b = backend!
    // A config the node itself refuses (the harness's schema would too, so it is built past it): the node exits 2.
    const bad: NodeConfig = { ...config('bad', 'peer'), announce: ['/ip4/10.0.0.1/tcp/99999'] }
    const error = await b.startNode(bad, AbortSignal.timeout(90_000)).then(() => null, (err: Error) => err)
    expect(error?.message).toMatch(/node "bad" \(container chiral-sim-.*-bad-\d+\) did not start/)
    expect(error?.message).toMatch(/chiral-node: invalid config from --config: field "announce\.0"/)
    const client = await getContainerRuntimeClient()
    const left = await client.container.dockerode.listContainers({ all: true, filters: { label: [`${RUN_LABEL}=${b.runId}`, 'chiral-sim.node=bad'] } })
    // Only the pause container (the node's place on the network) remains, for a retry; disposal removes it.
    expect(left.map(c => c.Names[0])).toEqual([expect.stringMatching(/-bad-net$/)])
  }, 120_000)

  it('starts a blackhole container that holds connections without answering', async () => {
    const b = backend!
    const signal = AbortSignal.timeout(120_000)
    const hole = await b.startBlackhole('hole', signal)
    const peer = await b.startNode(config('peer-h', 'peer', { bootstrapAddrs: [hole.multiaddr] }), signal)
    const started = Date.now()
    const result = await peer.handle.call('connectWithTimeout', { timeoutMs: 5_000 }, { signal })
    expect(result.success).toBe(false)
    expect(result.attempts[0]?.outcome).toBe('timeout')
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_900)
    await peer.stop()
    await hole.close()
  }, 180_000)

  it('publishes a node\'s ports on 127.0.0.1 only, outside the ephemeral range; its control channel wants the token and is out of reach of other containers and non-loopback host addresses (issue 12)', async () => {
    const b = backend!
    const signal = AbortSignal.timeout(170_000)
    const node = await b.startNode(config('exposed', 'bootstrap'), signal) as DockerNode
    const docker = (await getContainerRuntimeClient()).container.dockerode
    const ports = (await docker.getContainer(node.slot.pause.getId()).inspect()).NetworkSettings.Ports as Record<string, Array<{ HostIp: string, HostPort: string }> | null>
    const controlPort = Number(new URL(node.slot.controlUrl).port)
    for (const key of ['7070/tcp', '4001/tcp']) {
      expect(ports[key]?.map(p => p.HostIp), key).toEqual(['127.0.0.1'])
      expect(Number(ports[key]?.[0]?.HostPort)).toBeLessThan(candidateRange()[1] + 1)
    }
    expect(node.slot.controlUrl).toBe(`http://127.0.0.1:${controlPort}`)
    expect((await fetch(`${node.slot.controlUrl}/commands/shutdown`, { method: 'POST' })).status).toBe(401)
    expect((await node.handle.call('info', {}, { signal })).name).toBe('exposed')

    // Every non-loopback address of this machine (its outside address, the bridges' gateways): nothing there.
    const outside = Object.values(networkInterfaces()).flat().filter(i => i != null && i.family === 'IPv4' && !i.internal).map(i => i!.address)
    expect(outside.length).toBeGreaterThan(0)
    for (const address of outside) expect(await tcpReachable(address, controlPort), `${address}:${controlPort}`).toBe(false)

    // An unrelated container on the default bridge: neither the host's published port nor the node's own address.
    const script = `const net=require("net");const t=(h,p)=>new Promise(r=>{const s=net.connect({host:h,port:p,timeout:3000});s.on("connect",()=>{s.destroy();r("open")});s.on("timeout",()=>{s.destroy();r("timeout")});s.on("error",e=>r(e.code))});` +
      `(async()=>{const gw=require("os").networkInterfaces().eth0.find(i=>i.family==="IPv4").address.replace(/\\.\\d+$/,".1");` +
      `console.log(JSON.stringify({gateway:await t(gw,${controlPort}),node:await t(${JSON.stringify(node.slot.ip)},7070)}))})()`
    const { stdout } = await execFileAsync('docker', ['run', '--rm', '--network', 'bridge', '--label', `${RUN_LABEL}=${b.runId}`, '--entrypoint', '/usr/local/bin/node', image, '-e', script], { timeout: 60_000 })
    const reached = JSON.parse(stdout.trim()) as { gateway: string, node: string }
    expect(reached.gateway).not.toBe('open')
    expect(reached.node).not.toBe('open')
    await node.stop()
  }, 180_000)
})

async function tcpReachable (host: string, port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const socket = connect({ host, port, timeout: 3_000 })
    socket.on('connect', () => { socket.destroy(); resolve(true) })
    socket.on('timeout', () => { socket.destroy(); resolve(false) })
    socket.on('error', () => { resolve(false) })
  })
}

async function until (condition: () => boolean, signal: AbortSignal): Promise<void> {
  while (!condition()) {
    signal.throwIfAborted()
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
