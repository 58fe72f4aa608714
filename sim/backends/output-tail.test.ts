import { describe, expect, it } from 'vitest'
import { ScenarioSchema } from '../../scenarios/schema.ts'
import { runScenario } from '../runner/run-scenario.ts'
import { appendTail, nodeOutput, OUTPUT_STARTS_KEPT, OUTPUT_TAIL_CHARS } from './output-tail.ts'
import { ProcessBackend } from './process.ts'

describe('output tails', () => {
  it('keeps the end of the output, bounded', () => {
    expect(appendTail('abc', 'def', 4)).toBe('cdef')
    let text = ''
    for (let i = 0; i < 10_000; i++) text = appendTail(text, `line ${i}\n`)
    expect(text.length).toBe(OUTPUT_TAIL_CHARS)
    expect(text.endsWith('line 9999\n')).toBe(true)
  })

  it('records nothing for a node that printed nothing, one start as it is, restarts numbered', () => {
    expect(nodeOutput([])).toBeUndefined()
    expect(nodeOutput([() => '', () => ' \n'])).toBeUndefined()
    expect(nodeOutput([() => 'boom\n'])).toEqual({ text: 'boom\n', starts: 1 })
    expect(nodeOutput([() => 'first\n', () => ''])).toEqual({ text: '── start 1 of 2 ──\nfirst\n\n── start 2 of 2 ──\n(no output)\n', starts: 2 })
  })

  it('keeps the first start and the last ones of a crash loop, each cut to its tail', () => {
    const starts = Array.from({ length: 20 }, (_, i) => () => `start ${i + 1} ${'x'.repeat(OUTPUT_TAIL_CHARS)}`)
    const output = nodeOutput(starts)!
    expect(output.starts).toBe(20)
    const headers = [...output.text.matchAll(/── start (\d+) of 20 ──/g)].map(m => Number(m[1]))
    expect(headers).toEqual([1, ...Array.from({ length: OUTPUT_STARTS_KEPT - 1 }, (_, i) => 20 - OUTPUT_STARTS_KEPT + 2 + i)])
    expect(output.text).toContain('earlier characters not kept')
    expect(output.text.length).toBeLessThan(OUTPUT_STARTS_KEPT * (OUTPUT_TAIL_CHARS + 100))
  })

  it('puts a process node\'s own output, every start of it, into the run record', async () => {
    // libp2p's debug logger writes to stderr: a chiral node otherwise says nothing while all is well.
    const scenario = ScenarioSchema.parse({
      name: 'output-tail', title: 'output tail', description: 'a restarted bootstrap with libp2p debug output',
      nodes: [{ role: 'bootstrap', name: 'boot' }, { role: 'peer', name: 'A' }],
      steps: [
        { action: 'start', nodes: ['boot', 'A'] },
        { action: 'connect', nodes: ['A'], expect: { success: true } },
        { action: 'restart', nodes: ['boot'] }
      ]
    })
    const record = await runScenario(scenario, {
      mode: 'process', seed: 5, createBackend: async () => new ProcessBackend({ env: { ...process.env, DEBUG: 'libp2p:kad-dht*' } })
    })
    expect(record.status).toBe('passed')
    const boot = record.nodes.find(n => n.name === 'boot')!
    expect(boot.output?.starts).toBe(2)
    expect(boot.output?.text).toMatch(/── start 1 of 2 ──\n[^]*libp2p:kad-dht[^]*── start 2 of 2 ──\n[^]*libp2p:kad-dht/)
    expect(record.nodes.find(n => n.name === 'A')!.output?.starts).toBe(1)
  }, 90_000)
})
