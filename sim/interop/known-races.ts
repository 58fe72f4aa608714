import type { ScenarioRecord } from '../../scenarios/record.ts'

/**
 * The fingerprint of a client-side race a rust-libp2p bootstrap exposes (see rust-ping.test.ts): after a peer's
 * first successful connect to the bootstrap (`connect:done`), its kad-dht never admitted the bootstrap (no
 * `routing:add` of it before the peer's next connect or the end), because kad-dht's admission ping was the inbound
 * ping stream rust-libp2p dropped when the peer's own health ping opened. Tests use it to tell this known, reported
 * failure from any other: a run that failed without it is a real failure. Only the first connect counts: an old
 * routing entry can survive a bootstrap restart without a new `routing:add`; a window shorter than
 * ADMISSION_WINDOW_MS (the run ended or the peer reconnected first) is no evidence either way.
 */
export const ADMISSION_WINDOW_MS = 3_000

export function peersThatNeverAdmittedBootstrap (record: ScenarioRecord, bootstrapPeerId: string): string[] {
  const windows = new Map<string, { from: number, to: number }>()
  record.events.forEach((e, i) => {
    if (e.type !== 'connect:done' || !e.success) return
    const w = windows.get(e.node)
    if (w == null) windows.set(e.node, { from: i, to: record.events.length })
    else if (w.to === record.events.length) w.to = i
  })
  const lastTime = record.events.at(-1)?.time ?? 0
  return [...windows]
    .filter(([, w]) => (record.events[w.to]?.time ?? lastTime) - record.events[w.from]!.time >= ADMISSION_WINDOW_MS)
    .filter(([node, w]) => !record.events.slice(w.from, w.to).some(e => e.node === node && e.type === 'routing:add' && e.peerId === bootstrapPeerId))
    .map(([node]) => node)
}
