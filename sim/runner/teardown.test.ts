import net from 'node:net'
import { describe, expect, it } from 'vitest'
import { parseScenario } from '../../scenarios/load.ts'
import { createBackend } from '../backends/index.ts'
import { runScenario } from './run-scenario.ts'

/** A TCP address still accepts connections? (after teardown it must not) */
async function listening (multiaddr: string): Promise<boolean> {
  const m = /\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(multiaddr)
  if (m == null) throw new Error(`not a TCP address: ${multiaddr}`)
  return await new Promise(resolve => {
    const socket = net.connect({ host: m[1], port: Number(m[2]) })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { resolve(false) })
  })
}

const scenario = (extraSteps: string): ReturnType<typeof parseScenario> => parseScenario(`
name: teardown
title: teardown
nodes: [{ role: bootstrap, name: boot }, { role: peer, name: A }, { role: blackhole, name: dead }]
steps:
  - { action: start, nodes: [boot, dead, A] }
  - { action: connect, nodes: [A], expect: { success: true } }
${extraSteps}
`, 'teardown.yaml')

describe('teardown', () => {
  it('a failing scenario leaves no listener behind', async () => {
    const record = await runScenario(scenario('  - { action: wait, until: { routingTable: { node: A, minPeers: 5 } }, timeoutMs: 2000 }'), { mode: 'tcp', seed: 1, createBackend })
    expect(record.status).toBe('failed')
    const addrs = record.nodes.flatMap(n => n.multiaddrs)
    expect(addrs.length).toBeGreaterThanOrEqual(2)
    for (const a of addrs) expect(await listening(a), a).toBe(false)
  })

  it('an interrupted scenario leaves no listener behind and says so', async () => {
    const controller = new AbortController()
    setTimeout(() => { controller.abort(new Error('interrupted')) }, 1500)
    const record = await runScenario(scenario('  - { action: pause, ms: 600000 }'), { mode: 'tcp', seed: 2, createBackend, signal: controller.signal })
    expect(record.status).toBe('error')
    expect(record.reason).toBe('interrupted')
    for (const a of record.nodes.flatMap(n => n.multiaddrs)) expect(await listening(a), a).toBe(false)
  })

  it('a scenario that asserts nothing is an error, never a pass', async () => {
    const yaml = `
name: empty
title: empty
nodes: [{ role: bootstrap, name: boot }]
steps: [{ action: start, nodes: [boot] }, { action: wait, until: { routingTable: { node: boot, minPeers: 0 } }, timeoutMs: 1000 }]
`
    // Validation refuses it; a scenario built in code without the schema still cannot pass.
    expect(() => parseScenario(yaml.replace(/, \{ action: wait.*\}\]/, ']'), 'empty.yaml')).toThrow(/asserts nothing/)
    const valid = parseScenario(yaml, 'empty.yaml')
    const record = await runScenario({ ...valid, steps: valid.steps.slice(0, 1) }, { mode: 'memory', seed: 3, createBackend })
    expect(record.status).toBe('error')
    expect(record.reason).toMatch(/asserts nothing/)
  })
})

describe('teardown failures', () => {
  it('a failure while tearing down is recorded on the scenario, never thrown out of the run (the report must still be written)', async () => {
    const record = await runScenario(scenario(''), {
      mode: 'tcp',
      seed: 4,
      createBackend: async mode => {
        const backend = await createBackend(mode)
        const dispose = async (): Promise<void> => { await backend[Symbol.asyncDispose](); throw new Error('the engine went away') }
        return new Proxy(backend, {
          get: (target, key) => {
            if (key === Symbol.asyncDispose) return dispose
            const value: unknown = Reflect.get(target, key, target)
            return typeof value === 'function' ? value.bind(target) : value
          }
        })
      }
    })
    expect(record.status).toBe('error')
    expect(record.reason).toMatch(/^teardown failed: (Error: )?the engine went away$/)
    for (const a of record.nodes.flatMap(n => n.multiaddrs)) expect(await listening(a), a).toBe(false)
  })
})
