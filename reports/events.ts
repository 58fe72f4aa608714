import type { NodeEvent, NodeEventType } from '../nodes/events.ts'
import type { HealthStatus } from '../nodes/schemas.ts'
import { truncate } from './format.ts'
import type { PeerNames } from './names.ts'

/**
 * What a node event means to a reader of the report: its family (the colour of its mark), the health status it
 * reports (a red check is red whatever kind of event carried it), and a short label for the events that change what
 * a node is doing. The timeline, the event tables and the key-event list all read events through these.
 */

export const EVENT_FAMILIES = ['connect', 'health', 'discovery', 'file', 'fault', 'node'] as const
export type EventFamily = typeof EVENT_FAMILIES[number]

const FAMILY_BY_PREFIX: Record<string, EventFamily> = {
  connect: 'connect', connection: 'connect', dial: 'connect', bootstrap: 'connect',
  health: 'health', monitor: 'health', external: 'health', supervisor: 'health',
  discovery: 'discovery', peer: 'discovery', routing: 'discovery', dht: 'discovery',
  file: 'file',
  node: 'node', log: 'node'
}

export function eventFamily (type: NodeEventType): EventFamily {
  return FAMILY_BY_PREFIX[type.split(':')[0] ?? ''] ?? 'node'
}

/**
 * The status an event reports about a bootstrap's health, when it reports one: what the tick's colour shows. A red
 * check must look red whatever kind of event carried it.
 */
export function healthStatusOf (e: NodeEvent): HealthStatus | undefined {
  switch (e.type) {
    case 'health:check': return e.status
    case 'health:status': return e.to
    case 'health:warning': return 'yellow'
    case 'health:alert': return 'red'
    case 'health:recovered': return 'green'
    case 'supervisor:check': return e.ok ? 'green' : 'red'
    case 'supervisor:recovered': return 'green'
    case 'supervisor:alert': return 'red'
    case 'external:probe': return e.ok ? (e.speaksDht === false ? 'yellow' : 'green') : 'red'
    default: return undefined
  }
}

/** A short label for the events that change what a node is doing; routine events (checks, countdowns) get none. */
export function eventLabel (e: NodeEvent, names: PeerNames): string | undefined {
  const peer = (id: string): string => names.nameOf(id) ?? truncate(id, 14)
  switch (e.type) {
    case 'node:started': return 'started'
    case 'node:stopped': return 'stopped'
    case 'connect:done': return e.success ? `connected${e.attempts > 1 ? ` (${e.attempts} tries)` : ''}` : `connect failed (${e.attempts} tries)`
    case 'connect:result': return e.outcome === 'success' ? undefined : `attempt ${e.attempt}: ${e.outcome}`
    case 'health:status': return `health ${e.to}`
    case 'health:warning': return 'slow bootstrap'
    case 'health:alert': return 'unreachable alert'
    case 'health:recovered': return 'recovered'
    case 'discovery:status': return `discovery ${e.status.overall}`
    case 'dial:failed': return `dial ${peer(e.peerId)} ✘ ${e.category}`
    case 'supervisor:restart': return e.ok ? 'restarted' : 'restart failed'
    case 'supervisor:alert': return 'crash-loop alert'
    case 'supervisor:recovered': return e.automatic ? 'auto-recovered' : 'recovered (manual)'
    case 'supervisor:check': return e.ok ? undefined : 'check failed'
    case 'external:probe': return e.ok ? (e.speaksDht === false ? 'no DHT protocol' : 'probe ok') : 'probe failed'
    case 'log': return e.level === 'error' ? 'error' : undefined
    default: return undefined
  }
}

/** Events shown in a scenario's key-event list: changes, warnings and errors; routine ones stay in their node's stream. */
export const isKeyEvent = (e: NodeEvent, names: PeerNames): boolean =>
  eventLabel(e, names) !== undefined || (e.type === 'log' && e.level !== 'info') || e.type === 'discovery:phase' || e.type === 'connect:retry'
