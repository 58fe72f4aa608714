import type { BenchResults } from './results.ts'
import type { ScaleResult } from './scale.ts'
import { VERIFIED_DEFINITION } from './scale.ts'

type Row = [figure: string, value: string, target: string, ratio: string, command: string]

const fmt = (x: number | null | undefined, unit = '', digits = 0): string => x == null ? '—' : `${x.toFixed(digits)}${unit}`
const ratio = (value: number | null | undefined, target: number): string => value == null ? '—' : `${(value / target).toFixed(2)}×`

export function rows (r: BenchResults): Row[] {
  const out: Row[] = []
  for (const s of r.scale ?? []) {
    const cmd = r.scaleCommands?.[`${s.profile}/${s.n}`] ?? ''
    const at = `scale N=${s.n} [${s.profile}]`
    if ('crashed' in s) {
      out.push([at, `crashed (${s.exit})`, 'verified ≤ 120 s', '—', cmd])
      continue
    }
    const sr = s as ScaleResult
    out.push([`${at}: all verified`, sr.converged ? fmt(sr.convergeMs! / 1000, ' s', 1) : `not in ${sr.config.convergeDeadlineMs / 1000} s (${sr.verified}/${sr.n})`, '≤ 120 s', sr.converged ? ratio(sr.convergeMs! / 1000, 120) : '—', cmd])
    out.push([`${at}: join (all dials done)`, fmt(sr.joinMs == null ? null : sr.joinMs / 1000, ' s', 1), '', '', cmd])
    out.push([`${at}: connections opened (per peer)`, `${sr.connectionsOpened} (${fmt(sr.connectionsOpened / sr.n, '', 1)})`, '', '', cmd])
    out.push([`${at}: sampled pairs mutually visible`, `${sr.visibility.mutual}/${sr.visibility.pairs}, p50 ${fmt(sr.visibility.afterJoinMs.p50, ' ms')} after join`, '', '', cmd])
    out.push([`${at}: findPeer success`, `${sr.findPeer.found}/${sr.findPeer.pairs} (${fmt(sr.findPeer.share * 100, ' %')})`, '', '', cmd])
    out.push([`${at}: peak RSS / per peer`, `${fmt(sr.resources.peakRssMiB, ' MiB')} / ${fmt(sr.resources.rssPerPeerMiB, ' MiB', 2)}`, '< 4096 MiB', ratio(sr.resources.peakRssMiB, 4096), cmd])
    out.push([`${at}: CPU time (per peer)`, `${fmt(sr.resources.cpuMs / 1000, ' s', 1)} (${fmt(sr.resources.cpuSecondsPerPeer, ' s', 3)}) in ${fmt(sr.resources.wallMs / 1000, ' s', 1)} wall`, '', '', cmd])
    if (sr.unhandled.length > 0 || sr.error != null) out.push([`${at}: errors`, `${sr.unhandled.length} unhandled rejections${sr.error != null ? `; ${sr.error.split('\n')[0]}` : ''}`, '0', '', cmd])
  }
  for (const [profile, n] of Object.entries(r.largestConvergedN ?? {})) {
    out.push([`largest N verified within 120 s [${profile}] (of those run)`, String(n ?? 'none'), '1000', n == null ? '—' : ratio(n, 1000), ''])
  }
  if (r.latency != null) {
    const l = r.latency
    out.push([`mutual visibility, chiral-sim defaults (${l.mutualVisibility.visible}/${l.mutualVisibility.runs} runs)`, `p50 ${fmt(l.mutualVisibility.ms.p50, ' ms', 1)}, p90 ${fmt(l.mutualVisibility.ms.p90, ' ms', 1)}`, 'p50 < 1000 ms (plan < 15 s)', ratio(l.mutualVisibility.ms.p50, 1000), l.commands.mutualVisibility ?? ''])
    out.push([`mutual visibility, kad-dht's stock 1 s first self-query (${l.mutualVisibilityKadStock.visible}/${l.mutualVisibilityKadStock.runs})`, `p50 ${fmt(l.mutualVisibilityKadStock.ms.p50, ' ms', 1)}, p90 ${fmt(l.mutualVisibilityKadStock.ms.p90, ' ms', 1)}`, 'p50 < 1000 ms', ratio(l.mutualVisibilityKadStock.ms.p50, 1000), l.commands.mutualVisibility ?? ''])
    const c = l.connectTimeout
    out.push([`connect timeout vs TCP blackhole (${c.timedOut}/${c.runs} timed out)`, `reported p50 ${fmt(c.reportedMs.p50, ' ms')} (max ${fmt(c.reportedMs.max, ' ms')}), error p50 ${fmt(c.reportedErrorMs.p50, ' ms', 1)} max ${fmt(c.reportedErrorMs.max, ' ms', 1)}, wall p50 ${fmt(c.wallMs.p50, ' ms', 1)}`, `${c.configuredMs} ms`, ratio(c.reportedMs.p50, c.configuredMs), l.commands.connectTimeout ?? ''])
  }
  if (r.toxiproxy != null) {
    const t = r.toxiproxy
    if ('error' in t) out.push(['Toxiproxy clean-link overhead', `not measured: ${t.error}`, '< 1 ms', '—', r.toxiproxyCommand ?? ''])
    else {
      out.push([`echo RTT direct (${t.samples} × ${t.size} B)`, `p50 ${fmt(t.directMs.p50, ' ms', 3)}, p99 ${fmt(t.directMs.p99, ' ms', 3)}`, '', '', r.toxiproxyCommand ?? ''])
      out.push([`echo RTT via Toxiproxy ${t.toxiproxyVersion}`, `p50 ${fmt(t.proxiedMs.p50, ' ms', 3)}, p99 ${fmt(t.proxiedMs.p99, ' ms', 3)}`, '', '', r.toxiproxyCommand ?? ''])
      out.push(['RTT added by a clean proxy (median)', `${fmt(t.addedMedianMs, ' ms', 3)} (${fmt(t.ratioMedian, '× direct', 1)})`, '< 1 ms', ratio(t.addedMedianMs, 1), r.toxiproxyCommand ?? ''])
    }
  }
  for (const s of r.suite ?? []) {
    out.push([`built-in suite, ${s.mode} mode`, s.measured ? `${fmt(s.wallMs! / 1000, ' s', 1)} (${s.passed} passed, ${s.failed} failed, ${s.errored} error, ${s.skipped} skipped of ${s.scenarios})` : `not measured: ${s.reason ?? ''}`, '', '', r.suiteCommand ?? ''])
  }
  return out
}

export function renderTable (r: BenchResults): string {
  const all = rows(r)
  const w = [0, 1, 2, 3].map(i => Math.max(8, ...all.map(row => row[i]!.length)))
  const line = (row: string[]): string => row.slice(0, 4).map((c, i) => c.padEnd(w[i]!)).join('  ')
  const m = r.machine
  return [
    `chiral-sim bench — seed ${r.seed}${r.quick ? ' (quick)' : ''} — ${m.cpus} × ${m.cpuModel}, ${Math.round(m.memoryMiB / 1024)} GiB, Node ${m.node}, libp2p ${m.libp2p}, kad-dht ${m.kadDht}`,
    `"verified" (scale): ${VERIFIED_DEFINITION}`,
    '',
    line(['figure', 'value', 'target', 'ratio']),
    line(w.map(x => '-'.repeat(x))),
    ...all.map(line),
    '',
    'reproduce:',
    ...[...new Set(all.map(row => row[4]).filter(c => c !== ''))].map(c => `  ${c}`)
  ].join('\n')
}

export function renderMarkdown (r: BenchResults): string {
  const esc = (s: string): string => s.replace(/\s*\n\s*/g, '; ').replace(/\|/g, '\\|')
  const m = r.machine
  return [
    `Seed ${r.seed}${r.quick ? ' (quick)' : ''}; ${r.startedAt}. Machine: ${m.cpus} × ${m.cpuModel}, ${Math.round(m.memoryMiB / 1024)} GiB RAM, ${m.platform}/${m.arch}, Node ${m.node}, libp2p ${m.libp2p}, kad-dht ${m.kadDht}.`,
    '',
    `"Verified" in the scale bench: ${VERIFIED_DEFINITION}.`,
    '',
    '| figure | value | target | ratio | reproduce |',
    '|---|---|---|---|---|',
    ...rows(r).map(row => `| ${row.map((c, i) => i === 4 && c !== '' ? `\`${esc(c)}\`` : esc(c)).join(' | ')} |`)
  ].join('\n') + '\n'
}
