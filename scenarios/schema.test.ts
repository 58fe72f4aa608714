import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { BUILTIN_DIR, InputError, jsonErrorOffset, loadBuiltin, loadScenarioFile, MAX_SCENARIO_BYTES, parseScenario } from './load.ts'
import { scenarioJsonSchema } from './json-schema.ts'

const minimal = `
name: t
title: T
nodes: [{ role: bootstrap, name: boot }, { role: peer, name: A }]
steps:
  - { action: start, nodes: [boot, A] }
  - { action: connect, nodes: [A], expect: { success: true } }
`

function problem (yaml: string): string {
  try {
    parseScenario(yaml, 'x.yaml')
  } catch (err) {
    expect(err).toBeInstanceOf(InputError)
    return (err as Error).message
  }
  throw new Error('expected the scenario to be rejected')
}

describe('scenario schema', () => {
  it('accepts every built-in scenario', async () => {
    const all = await loadBuiltin()
    expect(all.length).toBeGreaterThanOrEqual(10)
    expect(new Set(all.map(s => s.scenario.planTest).filter(Boolean))).toEqual(new Set([1, 2, 3, 4, 5, 6]))
  })

  it('fills in the defaults of a minimal scenario', () => {
    const s = parseScenario(minimal, 'x.yaml')
    expect(s.timeScale).toBe(0.1)
    expect(s.timeoutMs).toBe(120_000)
  })

  it('keeps a node\'s DHT options to what it names, so the rest can come from elsewhere (an external bootstrap\'s protocol)', () => {
    // zod's partial() filled every default in: a peer that named only its mode got /chiral/kad/1.0.0 and never
    // took the external bootstrap's protocol (every asymmetry reproduction against rust/go failed as "protocol").
    const s = parseScenario(minimal.replace('{ role: peer, name: A }', '{ role: peer, name: A, dht: { mode: server }, timing: { healthCheckIntervalMs: 1000 } }'), 'x.yaml')
    const a = s.nodes.find(n => n.name === 'A')
    expect(a).toMatchObject({ dht: { mode: 'server' }, timing: { healthCheckIntervalMs: 1000 } })
    expect(Object.keys((a as { dht: object }).dht)).toEqual(['mode'])
    expect(Object.keys((a as { timing: object }).timing)).toEqual(['healthCheckIntervalMs'])
  })

  it('names the field of an unknown key', () => {
    expect(problem(minimal.replace('title: T', 'title: T\ncolour: red'))).toMatch(/x\.yaml: invalid scenario[\s\S]*unknown field\(s\) "colour"/)
  })

  it('suggests the field an unknown key was probably meant to be', () => {
    expect(problem(minimal.replace('expect: { success: true }', 'timeOutMs: 10000, expect: { success: true }'))).toMatch(/steps\[1\]: unknown field\(s\) "timeOutMs" \(did you mean "timeoutMs"\?\)/)
    expect(problem(minimal.replace('name: A }', 'name: A, bootstrap: [boot] }'))).toMatch(/unknown field\(s\) "bootstrap" \(did you mean "bootstraps"\?\)/)
  })

  it('names the field and range of a value out of range', () => {
    const msg = problem(minimal.replace('expect: { success: true }', 'timeoutMs: 40000'))
    expect(msg).toContain('steps[1].timeoutMs')
    expect(msg).toMatch(/30000/)
  })

  it('rejects an unknown node reference with the declared names', () => {
    expect(problem(minimal.replace('nodes: [A], expect', 'nodes: [Z], expect'))).toMatch(/steps\[1\]\.nodes\[0\]: unknown node "Z"; declared nodes: boot, A/)
  })

  it('rejects an unknown step action', () => {
    expect(problem(minimal.replace('action: connect', 'action: teleport'))).toContain('steps[1].action')
  })

  it('rejects a search for a file nobody shared', () => {
    expect(problem(`${minimal}  - { action: search, node: A, file: nope }\n`)).toMatch(/steps\[2\]\.file: file "nope" is not shared/)
  })

  it('rejects malformed YAML in one line', () => {
    expect(problem('name: [unclosed')).toMatch(/^x\.yaml:1:\d+: not valid YAML: /)
  })

  it('a plan timing below the plan range is refused with the plan reason', () => {
    expect(problem(minimal.replace('title: T', 'title: T\ntiming: { connectionTimeoutMs: 1000 }'))).toMatch(/timing\.connectionTimeoutMs: connectionTimeoutMs must be at least 5000/)
  })

  it('the connect step\'s timeout takes the plan\'s one 5000–30000 ms range', () => {
    expect(problem(minimal.replace('expect: { success: true }', 'timeoutMs: 4999, expect: { success: true }'))).toMatch(/steps\[1\]\.timeoutMs: timeoutMs must be at least 5000 \(the plan allows 5–30 s\)/)
    expect(problem(minimal.replace('expect: { success: true }', 'timeoutMs: 30001, expect: { success: true }'))).toMatch(/steps\[1\]\.timeoutMs: timeoutMs must be at most 30000/)
    expect(parseScenario(minimal.replace('expect: { success: true }', 'timeoutMs: 30000, expect: { success: true }'), 'x.yaml').steps[1]).toMatchObject({ timeoutMs: 30_000 })
  })
})

/** A scenario with peers A, a group p of `count` and an extra YAML block of nodes and steps. */
const withGroup = (count: number | string, steps = '', nodes = ''): string => `
name: t
title: T
nodes:
  - { role: bootstrap, name: boot }
  - { role: peer, name: A }
  - { role: peer, name: p, count: ${count} }
${nodes}steps:
  - { action: start, nodes: [boot, A, p] }
  - { action: connect, nodes: [A], expect: { success: true } }
${steps}`

describe('validation catches what would otherwise go wrong at run time', () => {
  it('a population beyond its bound is refused at once, naming the field, without expanding it', () => {
    for (const count of ['1000000000', '20000000', '2001']) {
      const started = Date.now()
      expect(problem(withGroup(count))).toMatch(/nodes\[2\]\.count: Too big: expected number to be <=2000/)
      expect(Date.now() - started).toBeLessThan(1_000)
    }
  })

  it('a declared node whose name is a group member is refused (it silently disappeared)', () => {
    expect(problem(withGroup(2, '', '  - { role: peer, name: p-1 }\n'))).toMatch(/nodes\[3\]\.name: "p-1" is also a member of the group "p" \(count 2\)/)
    // p-3 is not a member of a group of two.
    expect(() => parseScenario(withGroup(2, '', '  - { role: peer, name: p-3 }\n'), 'x.yaml')).not.toThrow()
  })

  it('group members are referable by name, the group itself only where a step takes a list', () => {
    expect(() => parseScenario(withGroup(3, '  - { action: wait, until: { sees: { node: p-3, peers: [A] } }, timeoutMs: 1000 }\n'), 'x.yaml')).not.toThrow()
    expect(problem(withGroup(3, '  - { action: wait, until: { sees: { node: p-4, peers: [A] } }, timeoutMs: 1000 }\n'))).toMatch(/steps\[2\]\.until\.sees\.node: unknown node "p-4"/)
    expect(problem(withGroup(3, '  - { action: wait, until: { sees: { node: p, peers: [A] } }, timeoutMs: 1000 }\n'))).toMatch(/steps\[2\]\.until\.sees\.node: "p" is a group of 3 peers; name one of them \(p-1 … p-3\)/)
  })

  it('a group whose member names would be too long is refused at the count', () => {
    const long = 'x'.repeat(62)
    expect(problem(withGroup(5, '').replace('name: p, count: 5', `name: ${long}, count: 100`).replace('nodes: [boot, A, p]', `nodes: [boot, A, ${long}]`))).toMatch(/nodes\[2\]\.count: the node name "x+-100" is invalid/)
  })

  it('every duration is bounded: a pause or wait above 2^31 ms would fire at once', () => {
    const big = 2 ** 31 + 1
    expect(problem(`${minimal}  - { action: pause, ms: ${big} }\n`)).toMatch(/steps\[2\]\.ms: at most 86400000 ms \(one day\)/)
    expect(problem(`${minimal}  - { action: wait, until: { routingTable: { node: A, minPeers: 1 } }, timeoutMs: ${big} }\n`)).toMatch(/steps\[2\]\.timeoutMs: at most 86400000 ms/)
    expect(problem(minimal.replace('title: T', `title: T\ntiming: { healthCheckIntervalMs: ${big} }`))).toMatch(/timing\.healthCheckIntervalMs: at most 86400000 ms/)
    expect(problem(minimal.replace('expect: { success: true }', `expect: { durationMs: { max: 5000, toleranceMs: ${big} } }`))).toMatch(/steps\[1\]\.expect\.durationMs\.toleranceMs: at most/)
  })

  it('afterStep must name an earlier step, in a wait as in an assert', () => {
    const steps = '  - { action: pause, ms: 10 }\n  - { action: pause, ms: 10 }\n  - { action: wait, until: { event: { node: A, type: "connect:result", afterStep: 99 } }, timeoutMs: 1000 }\n'
    expect(problem(`${minimal}${steps}`)).toMatch(/steps\[4\]\.until\.event\.afterStep: afterStep must name an earlier step \(0–3\)/)
    expect(problem(`${minimal}  - { action: assert, check: { event: { node: A, type: "connect:result", afterStep: 2 } } }\n`)).toMatch(/steps\[2\]\.check\.event\.afterStep: afterStep must name an earlier step \(0–1\)/)
    expect(() => parseScenario(`${minimal}${steps.replace('99', '1')}`, 'x.yaml')).not.toThrow()
  })

  it('per-node timing is checked as the node will get it: healthyLatencyMs above degradedLatencyMs', () => {
    const node = (timing: string): string => minimal.replace('{ role: peer, name: A }', `{ role: peer, name: A, timing: ${timing} }`)
    expect(problem(node('{ healthyLatencyMs: 600 }'))).toMatch(/nodes\[1\]\.timing\.healthyLatencyMs: healthyLatencyMs \(600\) must be below degradedLatencyMs \(500\)/)
    // The scenario's timing and the node's are layered as the runner layers them.
    expect(problem(node('{ degradedLatencyMs: 150 }').replace('title: T', 'title: T\ntiming: { healthyLatencyMs: 100 }').replace('degradedLatencyMs: 150', 'degradedLatencyMs: 90'))).toMatch(/healthyLatencyMs \(100\) must be below degradedLatencyMs \(90\)/)
    expect(() => parseScenario(node('{ healthyLatencyMs: 100, degradedLatencyMs: 150 }'), 'x.yaml')).not.toThrow()
    // The scenario's own timing is reported once, at the scenario's field.
    const scenarioWide = problem(minimal.replace('title: T', 'title: T\ntiming: { healthyLatencyMs: 600 }'))
    expect(scenarioWide.match(/healthyLatencyMs \(600\)/g)).toHaveLength(1)
    expect(scenarioWide).toMatch(/\n  timing\.healthyLatencyMs: healthyLatencyMs \(600\) must be below/)
  })

  it('"bootstraps" names bootstrap, blackhole or external nodes, never a peer', () => {
    const twoPeers = minimal.replace('{ role: peer, name: A }', '{ role: peer, name: A, bootstraps: [B] }, { role: peer, name: B }')
    expect(problem(twoPeers)).toMatch(/nodes\[1\]\.bootstraps\[0\]: "B" is a peer node; a peer bootstraps from bootstrap, blackhole or external nodes/)
    expect(problem(minimal.replace('expect: { success: true }', 'bootstraps: [A], expect: { success: true }'))).toMatch(/steps\[1\]\.bootstraps\[0\]: "A" is a peer node/)
    expect(problem(minimal.replace('expect: { success: true }', 'bootstraps: [nobody], expect: { success: true }'))).toMatch(/steps\[1\]\.bootstraps\[0\]: unknown node "nobody"/)
  })

  it('fault links run from one chiral-sim node to another', () => {
    const fault = (target: string, extraNodes = ''): string => `${minimal.replace('{ role: peer, name: A }', `{ role: peer, name: A }${extraNodes}`)}  - { action: fault, target: ${target}, down: true }\n`
    expect(problem(fault('{ links: ["A->A"] }'))).toMatch(/steps\[2\]\.target\.links\[0\]: "A->A" links a node to itself/)
    expect(problem(fault('{ links: ["A->dead"] }', ', { role: blackhole, name: dead }'))).toMatch(/steps\[2\]\.target\.links\[0\]: "dead" is a blackhole node; fault links run between bootstraps and peers/)
    expect(problem(fault('{ between: [[A], [boot, A]] }'))).toMatch(/steps\[2\]\.target\.between: "A" is on both sides/)
    expect(() => parseScenario(fault('{ links: ["A->boot"] }'), 'x.yaml')).not.toThrow()
  })

  it('heal names a fault an earlier step named', () => {
    expect(problem(`${minimal}  - { action: heal, faults: [cut] }\n`)).toMatch(/steps\[2\]\.faults\[0\]: no earlier fault step is named "cut"/)
    expect(() => parseScenario(`${minimal}  - { action: fault, target: { around: [boot] }, down: true, as: cut }\n  - { action: heal, faults: [cut] }\n`, 'x.yaml')).not.toThrow()
  })

  it('a step runs only on the roles whose commands it uses', () => {
    expect(problem(minimal.replace('action: connect, nodes: [A]', 'action: connect, nodes: [boot]'))).toMatch(/steps\[1\]\.nodes\[0\]: "boot" is a bootstrap node; "connect" runs on peers/)
  })

  it('a command step on a node no earlier step started is refused', () => {
    expect(problem(minimal.replace('nodes: [boot, A] }', 'nodes: [boot] }'))).toMatch(/steps\[1\]\.nodes\[0\]: "A" is not started by an earlier step; add it to a "start" step before "connect"/)
    expect(problem(withGroup(3, '  - { action: verify, nodes: [p-2], expect: { overall: verified } }\n').replace('nodes: [boot, A, p]', 'nodes: [boot, A, p-1]'))).toMatch(/steps\[2\]\.nodes\[0\]: "p-2" is not started/)
    // Stopped and started again, started member by member, or brought in by churn: all fine.
    expect(() => parseScenario(withGroup(2, '  - { action: stop, nodes: [A] }\n  - { action: restart, nodes: [A] }\n  - { action: verify, nodes: [A, p], expect: { overall: verified } }\n').replace('nodes: [boot, A, p]', 'nodes: [boot, A, p-1, p-2]'), 'x.yaml')).not.toThrow()
  })

  it('a connect to a blackhole nobody started is refused (it has no address yet)', () => {
    const yaml = minimal.replace('{ role: bootstrap, name: boot }', '{ role: blackhole, name: dead }').replace('nodes: [boot, A]', 'nodes: [A]')
    expect(problem(yaml)).toMatch(/steps\[1\]\.nodes\[0\]: "A" bootstraps from the blackhole "dead", which no earlier step started/)
    expect(() => parseScenario(yaml.replace('nodes: [A] }', 'nodes: [dead, A] }'), 'x.yaml')).not.toThrow()
  })

  it('a scenario that asserts nothing is refused (it could never fail)', () => {
    expect(problem(minimal.replace(', expect: { success: true }', ''))).toMatch(/  steps: the scenario asserts nothing/)
    expect(problem(minimal.replace('expect: { success: true }', 'expect: {}'))).toMatch(/asserts nothing/)
    expect(problem(minimal.replace('expect: { success: true }', 'expect: { durationMs: { toleranceMs: 100 } }'))).toMatch(/durationMs: give "min", "max" or "approx"/)
  })

  it('assert { check: { connected } } is refused with the wait that does it', () => {
    const msg = problem(`${minimal}  - { action: assert, check: { connected: { node: A, peers: [boot] } } }\n`)
    expect(msg).toMatch(/steps\[2\]\.check\.connected: a "connected" check needs time to hold: use \{ action: wait, until: \{ connected/)
    expect(msg).not.toMatch(/Invalid input/)
  })

  it('each problem names the line it is written on, in YAML and JSON alike', () => {
    expect(problem(minimal.replace('expect: { success: true }', 'timeoutMs: 40000'))).toMatch(/steps\[1\]\.timeoutMs: .* \(line 7\)$/m)
    const json = JSON.stringify({ name: 't', title: 'T', nodes: [{ role: 'peer', name: 'A' }], steps: [{ action: 'pause', ms: -1 }] }, null, 2)
    expect(() => parseScenario(json, 'x.json')).toThrow(/steps\[0\]\.ms: .* \(line 13\)/)
  })

  it('a union with no fitting key says which keys it takes', () => {
    expect(problem(`${minimal}  - { action: wait, until: { seen: { node: A } }, timeoutMs: 1000 }\n`)).toMatch(/steps\[2\]\.until: expected exactly one of "routingTable", "health", "event", "sees", "connected", "reachable", "unreachable"/)
  })

  it('text copied into reports is bounded', () => {
    expect(problem(minimal.replace('title: T', `title: T\ndescription: ${'x'.repeat(4_001)}`))).toMatch(/description: at most 4000 characters/)
    expect(problem(minimal.replace('expect: { success: true }', `label: ${'x'.repeat(201)}, expect: { success: true }`))).toMatch(/steps\[1\]\.label: at most 200 characters/)
  })
})

describe('scenario files', () => {
  let dir = ''
  beforeAll(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'chiral-load-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  async function fileProblem (name: string, content: string | Buffer): Promise<string> {
    const file = path.join(dir, name)
    await writeFile(file, content)
    const err = await loadScenarioFile(file).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(InputError)
    return (err as Error).message.replace(dir, 'DIR')
  }

  it('a file above the size limit is refused before it is read', async () => {
    const msg = await fileProblem('huge.yaml', `${minimal}description: "${'x'.repeat(MAX_SCENARIO_BYTES)}"\n`)
    expect(msg).toMatch(/DIR\/huge\.yaml: the scenario file is \d+ bytes; the limit is 1048576 \(1 MiB\)/)
  })

  it('bytes that are not UTF-8 are refused with their offset, not silently replaced', async () => {
    const bytes = Buffer.concat([Buffer.from(minimal.replace('title: T', 'title: T')), Buffer.from([0x23, 0x20, 0xc3, 0x28, 0x0a])])
    const msg = await fileProblem('latin.yaml', bytes)
    expect(msg).toBe(`DIR/latin.yaml: not UTF-8: invalid byte 0xc3 at byte offset ${Buffer.byteLength(minimal) + 2} (line 8); save the file as UTF-8`)
    // A byte-order mark is not an error.
    await writeFile(path.join(dir, 'bom.yaml'), `\uFEFF${minimal}`)
    expect((await loadScenarioFile(path.join(dir, 'bom.yaml'))).name).toBe('t')
  })

  it('a YAML or JSON syntax error shows file:line:col and the line with a caret', async () => {
    const yaml = await fileProblem('bad.yaml', 'name: t\nsteps:\n  - { action: start, nodes: [a }\n')
    expect(yaml).toBe([
      'DIR/bad.yaml:3:32: not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
      '  3 |   - { action: start, nodes: [a }',
      '    |                                ^'
    ].join('\n'))
    const json = await fileProblem('bad.json', '{\n  "name": "t",\n  "title": }\n')
    expect(json).toBe('DIR/bad.json:3:12: not valid JSON: unexpected "}"\n  3 |   "title": }\n    |            ^')
    // The locator agrees with JSON.parse on valid JSON.
    const schema = await readFile(path.join(BUILTIN_DIR, 'scenario.schema.json'), 'utf8')
    for (const ok of [schema, '0', ' "a\\u00e9\\n" ', '[-1.5e3, true, false, null, {}, []]']) expect(jsonErrorOffset(ok)).toBe(-1)
    for (const bad of ['{"a":1,}', '[01]', '"\t"', '{} x', '']) expect(jsonErrorOffset(bad)).toBeGreaterThanOrEqual(0)
    expect(await fileProblem('cut.json', '{\n  "name": "t",\n')).toMatch(/^DIR\/cut\.json:3:1: not valid JSON: unexpected end of the file/)
  })

  it('the published JSON Schema is the one generated from the zod schema', async () => {
    const published = JSON.parse(await readFile(path.join(BUILTIN_DIR, 'scenario.schema.json'), 'utf8'))
    expect(published).toEqual(scenarioJsonSchema())
  })
})
