import { describe, expect, it } from 'vitest'
import { escapeAttr, escapeText } from './escape.ts'
import { fixtureRunRecord, makeRun, makeScenario, T0 } from './fixtures.ts'
import { toJUnitXml } from './junit.ts'
import { buildReport } from './build-report.ts'

interface XmlElement { name: string, attrs: Record<string, string>, children: XmlElement[], text: string }

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: '\'' }
function decode (s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16))
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10))
    const v = ENTITIES[e]
    if (v === undefined) throw new Error(`unknown entity ${m}`)
    return v
  })
}

/**
 * A strict little XML reader for the subset JUnit uses (declaration, elements, attributes, text): it throws on
 * anything a real parser would reject — unbalanced tags, raw `<` or `&` in text, raw `<` or quotes in attributes,
 * characters XML 1.0 forbids.
 */
function parseXml (xml: string): XmlElement {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/.test(xml)) throw new Error('character not allowed in XML 1.0')
  if (!xml.isWellFormed()) throw new Error('lone surrogate')
  let i = 0
  const decl = /^<\?xml [^?]*\?>\s*/.exec(xml)
  if (decl === null) throw new Error('missing XML declaration')
  i = decl[0].length
  const root: XmlElement = { name: '#document', attrs: {}, children: [], text: '' }
  const stack = [root]
  const tag = /<(\/?)([A-Za-z][\w.-]*)((?:\s+[\w.-]+="[^"<]*")*)\s*(\/?)>/y
  while (i < xml.length) {
    const top = stack[stack.length - 1]!
    if (xml[i] === '<') {
      tag.lastIndex = i
      const m = tag.exec(xml)
      if (m === null) throw new Error(`malformed tag at ${i}: ${xml.slice(i, i + 40)}`)
      const [whole, close, name, rawAttrs, selfClose] = m as unknown as [string, string, string, string, string]
      i += whole.length
      if (close === '/') {
        if (top.name !== name) throw new Error(`</${name}> closes <${top.name}>`)
        stack.pop()
        continue
      }
      const attrs: Record<string, string> = {}
      for (const a of rawAttrs.matchAll(/([\w.-]+)="([^"]*)"/g)) attrs[a[1]!] = decode(a[2]!)
      const el: XmlElement = { name, attrs, children: [], text: '' }
      top.children.push(el)
      if (selfClose !== '/') stack.push(el)
    } else {
      const end = xml.indexOf('<', i)
      const raw = xml.slice(i, end === -1 ? xml.length : end)
      if (/&(?!(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);)/i.test(raw)) throw new Error(`raw & in text: ${raw}`)
      top.text += decode(raw)
      i += raw.length
    }
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`)
  if (root.children.length !== 1) throw new Error('exactly one root element expected')
  return root.children[0]!
}

const all = (el: XmlElement, name: string): XmlElement[] =>
  [...el.children.filter(c => c.name === name), ...el.children.flatMap(c => all(c, name))]

describe('toJUnitXml structure', () => {
  const report = buildReport(fixtureRunRecord())
  const root = parseXml(toJUnitXml(report))
  const suite = root.children[0]!
  const cases = all(root, 'testcase')
  const byName = (name: string): XmlElement => cases.find(c => c.attrs.name === name)!

  it('has one testsuite per run with the totals CI servers read', () => {
    expect(root.name).toBe('testsuites')
    expect(root.children.map(c => c.name)).toEqual(['testsuite'])
    expect(suite.attrs).toMatchObject({ name: 'chiral-sim run-fixture-0001', tests: '8', failures: '2', errors: '1', skipped: '1', time: '120.000' })
    expect(root.attrs).toMatchObject({ tests: '8', failures: '2', errors: '1', skipped: '1' })
  })

  it('has one testcase per scenario, classname = mode, time in seconds', () => {
    expect(cases.map(c => c.attrs.name)).toEqual(report.scenarios.map(s => s.name))
    expect(byName('plan-1-normal-connection').attrs).toMatchObject({ classname: 'memory', time: '4.200' })
    expect(byName('docker-smoke').attrs.classname).toBe('docker')
  })

  it('a failure carries the failing assertions, expected vs actual', () => {
    const failure = all(byName('plan-3-bidirectional-discovery'), 'failure')
    expect(failure).toHaveLength(1)
    expect(failure[0]!.attrs.message).toBe('bidirectional-peerA-sees-peerB: expected peerB in peerA\'s discovered peers within 15s, actual missing after 15.0s: routing table <boot> only & "no dial"')
    expect(failure[0]!.text).toContain('expected: peerB in peerA\'s discovered peers within 15s')
    expect(failure[0]!.text).toContain('actual:   missing after 15.0s: routing table <boot> only & "no dial"')
    expect(failure[0]!.text).toContain('step 4 waitForBidirectionalDiscovery')
    expect(failure[0]!.text).toContain('cause: peerB sees peerA but not the reverse — one-way-fault: peerB can dial peerA but peerA cannot dial peerB')
  })

  it('attaches the nodes\' own output to a scenario that did not pass, as <system-err>', () => {
    const err = all(byName('docker-smoke'), 'system-err')
    expect(err).toHaveLength(1)
    expect(err[0]!.text).toBe('=== boot (bootstrap, output of 1 start) ===\nchiral-node: node "boot" could not start: listen EADDRINUSE 0.0.0.0:4001 <in use>\n')
    expect(all(byName('plan-1-normal-connection'), 'system-err')).toHaveLength(0)
  })

  it('error, skipped and invalid map to <error>, <skipped message> and <failure>', () => {
    expect(all(byName('docker-smoke'), 'error')[0]!.attrs.message).toMatch(/connect ENOENT/)
    expect(all(byName('plan-5-auto-recovery'), 'skipped')[0]!.attrs.message).toBe('needs process or docker mode')
    const invalid = all(byName('fault-bypass-check'), 'failure')[0]!
    expect(invalid.attrs.type).toBe('InvalidRun')
    expect(invalid.attrs.message).toMatch(/^invalid run: traffic bypassed/)
    expect(all(byName('plan-1-normal-connection'), 'failure')).toHaveLength(0)
  })

  it('records the run facts and KPIs as properties', () => {
    const props = Object.fromEntries(all(suite, 'property').map(p => [p.attrs.name, p.attrs.value]))
    expect(props).toMatchObject({ mode: 'memory', seed: '42', timeScale: '0.1', 'version.libp2p': '3.3.11' })
    expect(props['kpi.connectionSuccessRate']).toBe('90 % (target > 95 %, 10 samples, not met)')
  })
})

describe('XML escaping', () => {
  const hostile = 'a<b & "c" \'d\' ]]> \u0001\u001f\uD800 end\ttab\nline'

  it('escapes markup characters in text and attributes, and keeps illegal characters visible', () => {
    expect(escapeText('<a> & b')).toBe('&lt;a&gt; &amp; b')
    expect(escapeAttr('"x" \'y\'\n')).toBe('&quot;x&quot; &#39;y&#39;&#10;')
    expect(escapeText('bell\u0007')).toBe('bell\\u0007')
    expect(escapeText('\uD800')).toBe('\uFFFD')
  })

  it('a scenario full of hostile characters still gives well-formed XML that round-trips', () => {
    const record = makeRun([makeScenario(hostile, {
      status: 'failed', reason: hostile,
      assertions: [{ id: hostile, description: hostile, expected: `<expected attr="1">`, actual: hostile, passed: false, at: T0 }]
    })])
    const xml = toJUnitXml(buildReport(record))
    const testcase = all(parseXml(xml), 'testcase')[0]!
    const readable = 'a<b & "c" \'d\' ]]> \\u0001\\u001f\uFFFD end\ttab\nline'
    expect(testcase.attrs.name).toBe(readable)
    const failure = all(testcase, 'failure')[0]!
    expect(failure.attrs.message).toContain('expected <expected attr="1">')
    expect(failure.text).toContain(`actual:   ${readable}`)
    expect(xml).not.toMatch(/[\u0001\u001f]/)
  })

  it('the checker itself rejects malformed XML', () => {
    expect(() => parseXml('<?xml version="1.0"?><a>x & y</a>')).toThrow(/raw &/)
    expect(() => parseXml('<?xml version="1.0"?><a><b></a>')).toThrow()
    expect(() => parseXml('<?xml version="1.0"?><a b="<"/>')).toThrow()
    expect(() => parseXml('<?xml version="1.0"?><a>\u0001</a>')).toThrow()
  })
})
