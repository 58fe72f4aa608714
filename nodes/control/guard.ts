import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { isIP } from 'node:net'
import { CommandError } from '../commands.ts'

/**
 * Who may talk to a control server: the holder of its token, from the harness or curl — never a web page. A page
 * can reach a loopback port (a cross-site POST, or DNS rebinding: a name the attacker controls that resolves to
 * 127.0.0.1), so the checks that do not depend on the secret come first and say why a browser was turned away.
 */

export interface GuardPolicy {
  token: string
  /** The address the server listens on; an unspecified one (0.0.0.0, ::) accepts any IP literal as Host. */
  boundHost: string
}

export interface Refusal {
  status: number
  error: CommandError
  headers?: Record<string, string>
}

/** Undefined when the request may proceed. */
export function refuse (req: IncomingMessage, policy: GuardPolicy): Refusal | undefined {
  // Only browsers send these; no legitimate client of this channel runs in one.
  const origin = req.headers.origin ?? req.headers['sec-fetch-site']
  if (origin !== undefined) {
    return forbidden(`requests from web pages are refused (Origin/Sec-Fetch-Site: ${String(origin).slice(0, 100)})`)
  }
  const host = hostnameOf(req.headers.host)
  if (host === undefined || !hostAllowed(host, policy.boundHost)) {
    return forbidden(`Host "${String(req.headers.host ?? '').slice(0, 100)}" is refused: use localhost or the IP address the node listens on`)
  }
  if (!tokenMatches(req.headers.authorization, policy.token)) {
    return {
      status: 401,
      error: new CommandError('unauthorized', 'missing or wrong control token: send "Authorization: Bearer <token>" with the token from the file given to the node as --control-token-file'),
      headers: { 'www-authenticate': 'Bearer realm="chiral-control"' }
    }
  }
  if (hasBody(req) && !isJson(req.headers['content-type'])) {
    return { status: 415, error: new CommandError('bad-request', `request bodies must be Content-Type: application/json, got "${String(req.headers['content-type'] ?? 'none').slice(0, 100)}"`, 'content-type') }
  }
  return undefined
}

function forbidden (message: string): Refusal {
  return { status: 403, error: new CommandError('forbidden', message) }
}

/** The Host header without its port; IPv6 literals without brackets. */
export function hostnameOf (header: string | undefined): string | undefined {
  if (header === undefined || header === '') return undefined
  if (header.startsWith('[')) {
    const end = header.indexOf(']')
    return end < 0 ? undefined : header.slice(1, end).toLowerCase()
  }
  const colon = header.indexOf(':')
  return (colon < 0 ? header : header.slice(0, colon)).toLowerCase()
}

/**
 * A name is what DNS rebinding needs, so the only name allowed is localhost; an IP literal cannot be rebound. The
 * literal must be loopback or the bound address — any address when bound to all of them (a container, whose
 * published port is reached through another address than the one it listens on).
 */
function hostAllowed (host: string, boundHost: string): boolean {
  if (host === 'localhost') return true
  if (isIP(host) === 0) return false
  if (isLoopback(host)) return true
  const bound = boundHost.replace(/^\[|\]$/g, '').toLowerCase()
  return bound === '0.0.0.0' || bound === '::' || bound === '' || bound === host
}

function isLoopback (ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.')
}

function tokenMatches (header: string | undefined, token: string): boolean {
  const match = /^Bearer +(\S+) *$/i.exec(header ?? '')
  if (match?.[1] == null) return false
  // Equal-length digests, so the comparison's time says nothing about the token.
  const digest = (text: string): Buffer => createHash('sha256').update(text).digest()
  return timingSafeEqual(digest(match[1]), digest(token))
}

function hasBody (req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0
}

function isJson (contentType: string | undefined): boolean {
  const type = (contentType ?? '').split(';', 1)[0]?.trim().toLowerCase()
  return type === 'application/json'
}
