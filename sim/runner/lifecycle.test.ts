import { describe, expect, it } from 'vitest'
import type { NodeHandle } from '../../nodes/commands.ts'
import type { NodeConfig } from '../../nodes/config.ts'
import { parseScenario } from '../../scenarios/load.ts'
import type { Backend, StartedNode } from '../backends/backend.ts'
import type { SuperviseOptions, SupervisedNode } from '../backends/supervise.ts'
import { RunContext, buildNodes } from './context.ts'
import { restartNode, startNode, stopNode, tearDown, unsupervise } from './lifecycle.ts'
import type { RunNode } from './roster.ts'

/** A backend whose nodes are records of what was done to them, and whose supervisor restarts on demand. */
function fakeBackend (): { backend: Backend, log: string[], restart: () => void } {
  const log: string[] = []
  let options: SuperviseOptions | undefined
  let starts = 0
  const startNode = async (config: NodeConfig): Promise<StartedNode> => {
    const id = `${config.name}#${++starts}`
    log.push(`start ${id}`)
    const handle = { name: config.name, role: config.role, call: async () => { throw new Error('not used') }, subscribe: () => () => { log.push(`unsubscribe ${id}`) } } as unknown as NodeHandle
    return {
      handle, peerId: 'p', multiaddrs: [],
      stop: async () => { log.push(`stop ${id}`) },
      kill: async () => { log.push(`kill ${id}`) },
      [Symbol.asyncDispose]: async () => {}
    }
  }
  const backend = {
    mode: 'process', transport: 'tcp',
    place: async () => ({ listen: ['/ip4/127.0.0.1/tcp/1'] }),
    startNode,
    startBlackhole: async (name: string) => ({ multiaddr: `/ip4/127.0.0.1/tcp/2/p2p/${name}`, close: async () => { log.push(`close ${name}`) }, [Symbol.asyncDispose]: async () => {} }),
    hostAddress: async () => '127.0.0.1',
    supervise: async (node: StartedNode, o: SuperviseOptions): Promise<SupervisedNode> => {
      options = o
      log.push(`supervise ${node.handle.name}`)
      return {
        supervisor: { recoveries: () => [], history: () => ({ incident: undefined }) },
        current: node,
        stop: async () => { log.push('unsupervise') },
        [Symbol.asyncDispose]: async () => {}
      } as unknown as SupervisedNode
    },
    [Symbol.asyncDispose]: async () => {}
  } as unknown as Backend
  return { backend, log, restart: () => { void startNode({ name: 'boot', role: 'bootstrap' } as NodeConfig).then(fresh => { options?.onRestarted?.(fresh) }) } }
}

async function run (): Promise<{ ctx: RunContext, node: (n: string) => RunNode, log: string[], restart: () => void }> {
  const scenario = parseScenario(`
name: lifecycle
title: lifecycle
nodes: [{ role: bootstrap, name: boot, supervise: true }, { role: peer, name: A }, { role: blackhole, name: dead }]
steps:
  - { action: start, nodes: [boot, dead, A] }
  - { action: connect, nodes: [A], expect: { success: true } }
`, 'lifecycle.yaml')
  const { backend, log, restart } = fakeBackend()
  const ctx = new RunContext({ scenario, backend, seed: 1, timeScale: 1, signal: new AbortController().signal })
  await buildNodes(ctx, { fixAddresses: false })
  return { ctx, node: n => ctx.roster.node(n), log, restart }
}

describe('a node\'s lifecycle', () => {
  it('moves through its phases, and refuses what its phase does not allow', async () => {
    const { ctx, node, log } = await run()
    expect(node('A').state.phase).toBe('declared')
    await expect(stopNode(ctx, node('A'), 'stop')).rejects.toThrow('node "A" is not running')
    expect(() => ctx.roster.handle('A')).toThrow('node "A" is not running (start it first)')
    await startNode(ctx, node('dead'))
    await startNode(ctx, node('A'))
    expect(node('A').state.phase).toBe('started')
    expect(ctx.roster.handle('A').name).toBe('A')
    await expect(startNode(ctx, node('A'))).rejects.toThrow('node "A" is already running')
    await stopNode(ctx, node('A'), 'kill')
    expect(node('A').state.phase).toBe('killed')
    await restartNode(ctx, node('A'))
    await stopNode(ctx, node('dead'), 'stop')
    expect(node('dead').state.phase).toBe('stopped')
    expect(log).toEqual(['start A#1', 'kill A#1', 'unsubscribe A#1', 'start A#2', 'close dead'])
  })

  it('a supervised bootstrap: a kill leaves it to its supervisor, a stop ends supervision first', async () => {
    const { ctx, node, log, restart } = await run()
    await startNode(ctx, node('boot'))
    expect(node('boot').state.phase).toBe('supervised')
    await stopNode(ctx, node('boot'), 'kill')
    expect(node('boot').state.phase).toBe('recovering')
    expect(() => ctx.roster.handle('boot')).toThrow('its supervisor is bringing it back')
    await expect(startNode(ctx, node('boot'))).rejects.toThrow('its supervisor is bringing it back')
    restart()
    await expect.poll(() => node('boot').state.phase).toBe('supervised')
    await stopNode(ctx, node('boot'), 'stop')
    expect(node('boot').state.phase).toBe('stopped')
    expect(log).toEqual(['start boot#1', 'supervise boot', 'kill boot#1', 'unsubscribe boot#1', 'start boot#2', 'unsupervise', 'stop boot#2', 'unsubscribe boot#2'])
  })

  it('a restart of a killed supervised bootstrap ends the old supervision before the new start', async () => {
    const { ctx, node, log } = await run()
    await startNode(ctx, node('boot'))
    await stopNode(ctx, node('boot'), 'kill')
    await restartNode(ctx, node('boot'))
    expect(node('boot').state.phase).toBe('supervised')
    expect(log.slice(4)).toEqual(['unsupervise', 'start boot#2', 'supervise boot'])
    await unsupervise(ctx, node('boot'))
    expect(node('boot').state.phase).toBe('started')
  })

  it('teardown ends supervision, then stops whatever is up', async () => {
    const { ctx, node, log } = await run()
    for (const n of ['boot', 'dead', 'A']) await startNode(ctx, node(n))
    await tearDown(ctx)
    expect([...ctx.roster.nodes.values()].map(n => n.state.phase)).toEqual(['stopped', 'stopped', 'stopped'])
    // The nodes stop concurrently; supervision ends before any of them.
    expect(log[3]).toBe('unsupervise')
    expect(log.slice(4).sort()).toEqual(['close dead', 'stop A#2', 'stop boot#1', 'unsubscribe A#2', 'unsubscribe boot#1'])
  })
})
