import { describe, expect, it } from 'vitest'
import { EVENT_LOG_RETENTION, EventLog } from './events.ts'

describe('EventLog retention (issue 12: every event was kept forever)', () => {
  it('keeps the last EVENT_LOG_RETENTION events, numbers on, and says what it dropped', () => {
    const log = new EventLog('n')
    const total = EVENT_LOG_RETENTION * 2 + 500
    for (let i = 0; i < total; i++) log.emit({ type: 'log', level: 'info', message: `event ${i}` })
    expect(log.next).toBe(total)
    expect(log.first).toBe(total - EVENT_LOG_RETENTION)
    expect(log.dropped).toBe(total - EVENT_LOG_RETENTION)
    const kept = log.since(0)
    expect(kept).toHaveLength(EVENT_LOG_RETENTION)
    expect(kept[0]?.seq).toBe(log.first)
    expect(kept.at(-1)?.seq).toBe(total - 1)
    expect(log.get(log.first - 1)).toBeUndefined()
    expect(log.get(log.first)).toMatchObject({ seq: log.first, message: `event ${log.first}` })
    expect(log.get(total)).toBeUndefined()
    expect(log.since(total - 3).map(e => e.seq)).toEqual([total - 3, total - 2, total - 1])
  })

  it('counts every event type ever emitted, dropped ones included (a verdict must not change with retention)', () => {
    const log = new EventLog('n', Date.now, { retention: 3 })
    log.emit({ type: 'routing:add', peerId: 'p', size: 1 })
    for (let i = 0; i < 5; i++) log.emit({ type: 'log', level: 'info', message: String(i) })
    expect(log.since(0).map(e => e.type)).toEqual(['log', 'log', 'log'])
    expect(log.has('routing:add')).toBe(true)
    expect(log.count('routing:add')).toBe(1)
    expect(log.count('log')).toBe(5)
    expect(log.has('node:stopped')).toBe(false)
  })
})
