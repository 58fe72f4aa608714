/**
 * Toxiproxy's byte counters, read from its Prometheus endpoint (the server must run with `-proxy-metrics`).
 *
 * Verified against toxiproxy 2.12.0 (collectors/proxy.go and a live server):
 *   toxiproxy_proxy_received_bytes_total{direction, proxy, listener, upstream}  — bytes read from the source side
 *   toxiproxy_proxy_sent_bytes_total{direction, proxy, listener, upstream}      — bytes written to the other side
 * with direction "upstream" (client → server) or "downstream" (server → client).
 *
 * Two properties of these counters shape how they may be used:
 * - They are credited when a connection's copy loop ends (link.go adds the io.Copy total on return), so bytes of a
 *   connection that is still open are invisible. Read them after the traffic's connections have closed.
 * - `sent` is credited only when the write side ended without error; a connection the toxic reset (reset_peer,
 *   limit_data, a peer that vanished) may show `received` bytes and no `sent` bytes. Both are reported.
 * Series outlive their proxy (deleting a proxy does not delete its series), so sums are per proxy name, which the
 * harness makes unique per run.
 */

export interface PromSample {
  name: string
  labels: Record<string, string>
  value: number
}

/** Parses the Prometheus text exposition format (the subset Toxiproxy emits: no timestamps needed). */
export function parsePrometheusText (text: string): PromSample[] {
  const samples: PromSample[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const sample = parseLine(line)
    if (sample != null) samples.push(sample)
  }
  return samples
}

function parseLine (line: string): PromSample | null {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)
  if (nameMatch == null) return null
  const name = nameMatch[0]
  let i = name.length
  const labels: Record<string, string> = {}
  if (line[i] === '{') {
    i++
    while (i < line.length && line[i] !== '}') {
      const keyMatch = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"/.exec(line.slice(i))
      if (keyMatch == null) return null
      i += keyMatch[0].length
      let value = ''
      // Label values escape backslash, double quote and newline; a quote ends the value only when unescaped.
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < line.length) {
          const next = line[i + 1]
          value += next === 'n' ? '\n' : next
          i += 2
        } else {
          value += line[i]
          i++
        }
      }
      i++
      labels[keyMatch[1] as string] = value
      const sep = /^\s*,?\s*/.exec(line.slice(i))
      i += sep?.[0].length ?? 0
    }
    i++
  }
  const valueText = line.slice(i).trim().split(/\s+/)[0] ?? ''
  const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : Number(valueText)
  if (valueText === '' || (Number.isNaN(value) && valueText !== 'NaN')) return null
  return { name, labels, value }
}

export interface DirectionBytes {
  upstream: number
  downstream: number
}

export interface ProxyByteCounts {
  sent: DirectionBytes
  received: DirectionBytes
}

export const SENT_BYTES_METRIC = 'toxiproxy_proxy_sent_bytes_total'
export const RECEIVED_BYTES_METRIC = 'toxiproxy_proxy_received_bytes_total'

/** Sums one proxy's counters over every series (a proxy that was re-created on another listener has several). */
export function proxyByteCounts (samples: PromSample[], proxy: string): ProxyByteCounts {
  const counts: ProxyByteCounts = { sent: { upstream: 0, downstream: 0 }, received: { upstream: 0, downstream: 0 } }
  for (const s of samples) {
    if (s.labels.proxy !== proxy) continue
    const bucket = s.name === SENT_BYTES_METRIC ? counts.sent : s.name === RECEIVED_BYTES_METRIC ? counts.received : null
    if (bucket == null) continue
    if (s.labels.direction === 'upstream') bucket.upstream += s.value
    else if (s.labels.direction === 'downstream') bucket.downstream += s.value
  }
  return counts
}

/**
 * The module version from `go_build_info` (present with `-runtime-metrics`). A `go install` build reports
 * "git" from /version, but the Go runtime still records the module version it was built from.
 */
export function goBuildVersion (samples: PromSample[]): string | null {
  const info = samples.find(s => s.name === 'go_build_info' && s.labels.path === 'github.com/Shopify/toxiproxy/v2')
  const v = info?.labels.version
  if (v == null || v === '' || v === '(devel)') return null
  return v.replace(/^v/, '')
}
