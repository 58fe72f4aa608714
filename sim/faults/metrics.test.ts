import { describe, expect, it } from 'vitest'
import { goBuildVersion, parsePrometheusText, proxyByteCounts } from './metrics.ts'

// Shape copied from a live toxiproxy-server 2.12.0 started with -proxy-metrics -runtime-metrics.
const SAMPLE = `# HELP go_build_info Build information about the main Go module.
# TYPE go_build_info gauge
go_build_info{checksum="h1:d1x++lYZg/zijXPPcv7PH0MvHMzEI5aX/YuUi/Sw+yg=",path="github.com/Shopify/toxiproxy/v2",version="v2.12.0"} 1
go_gc_gomemlimit_bytes 9.223372036854776e+18
# HELP toxiproxy_proxy_received_bytes_total
# TYPE toxiproxy_proxy_received_bytes_total counter
toxiproxy_proxy_received_bytes_total{direction="downstream",listener="127.0.0.1:45869",proxy="run.a",upstream="127.0.0.1:34081"} 1000
toxiproxy_proxy_received_bytes_total{direction="upstream",listener="127.0.0.1:45869",proxy="run.a",upstream="127.0.0.1:34081"} 1200
toxiproxy_proxy_received_bytes_total{direction="upstream",listener="127.0.0.1:45870",proxy="run.a",upstream="127.0.0.1:34081"} 5
toxiproxy_proxy_sent_bytes_total{direction="downstream",listener="127.0.0.1:45869",proxy="run.a",upstream="127.0.0.1:34081"} 900
toxiproxy_proxy_sent_bytes_total{direction="upstream",listener="127.0.0.1:45869",proxy="run.a",upstream="127.0.0.1:34081"} 1200
toxiproxy_proxy_sent_bytes_total{direction="upstream",listener="127.0.0.1:1",proxy="run.b",upstream="127.0.0.1:2"} 7
`

describe('Toxiproxy metrics', () => {
  it('parses samples, labels (with escapes) and values', () => {
    const samples = parsePrometheusText(SAMPLE + 'odd{a="x\\"y\\\\z\\n",b=",}"} 3\n')
    expect(samples).toHaveLength(9)
    expect(samples[1]).toEqual({ name: 'go_gc_gomemlimit_bytes', labels: {}, value: 9.223372036854776e18 })
    expect(samples.at(-1)).toEqual({ name: 'odd', labels: { a: 'x"y\\z\n', b: ',}' }, value: 3 })
  })

  it('sums one proxy’s sent and received bytes per direction, over all its listeners', () => {
    expect(proxyByteCounts(parsePrometheusText(SAMPLE), 'run.a')).toEqual({
      sent: { upstream: 1200, downstream: 900 },
      received: { upstream: 1205, downstream: 1000 }
    })
    expect(proxyByteCounts(parsePrometheusText(SAMPLE), 'nope')).toEqual({
      sent: { upstream: 0, downstream: 0 }, received: { upstream: 0, downstream: 0 }
    })
  })

  it('reads the module version a go-installed server was built from', () => {
    expect(goBuildVersion(parsePrometheusText(SAMPLE))).toBe('2.12.0')
    expect(goBuildVersion([])).toBeNull()
  })
})
