import { z } from 'zod'
import type { CategorizedError, ErrorCategory } from './schemas.ts'

/**
 * Plan Solution #1.4: every bootstrap dial failure becomes one of a few categories, each with the plan's
 * user-facing message and its own suggested action.
 */
export const BOOTSTRAP_ERROR_MESSAGES: Readonly<Record<ErrorCategory, { readonly message: string, readonly suggestedAction: string }>> = {
  timeout: {
    message: 'Bootstrap not responding - may be down',
    suggestedAction: 'Try again later or check internet connection'
  },
  refused: {
    message: 'Bootstrap server not available',
    suggestedAction: 'The bootstrap is not accepting connections; try another bootstrap or try again later'
  },
  unreachable: {
    message: 'Check your internet connection',
    suggestedAction: 'The bootstrap address cannot be reached from this machine; check your network connection and the bootstrap address'
  },
  'already-connected': {
    message: 'DHT already running on this port',
    suggestedAction: 'Stop the other DHT instance or use a different port, then connect again'
  },
  busy: {
    message: 'Bootstrap is busy - retrying with a longer timeout',
    suggestedAction: 'Wait for the retry; if the bootstrap stays busy, try another bootstrap later'
  },
  protocol: {
    message: 'The remote does not speak the DHT protocol - wrong protocol or not a bootstrap',
    suggestedAction: 'Check that the address points to a bootstrap node running the same DHT protocol version'
  },
  // Not one of the plan's four: the bootstrap answered and completed the handshake, then dropped the connection once
  // it knew who we are (an admission policy on identify's agent version, as rust-libp2p apps write them). Calling
  // it "refused" would send the user to check whether the bootstrap is up, which it is.
  rejected: {
    message: 'Bootstrap closed the connection after identify - this client was not admitted',
    suggestedAction: 'The bootstrap is up but drops this client once it learns its agent version or protocols (an admission policy?); check what it admits against this node\'s agentVersion and DHT protocol, or try another bootstrap'
  },
  unknown: {
    message: 'Could not connect to the bootstrap',
    suggestedAction: 'Try again; if the problem persists, check the event log for details'
  }
}

export interface CategorizeContext {
  /** The caller's own deadline fired: whatever error the abort produced, the bootstrap did not answer in time. */
  timedOut?: boolean
  /**
   * The deadline that applied. Not part of the result: the plan's message is fixed, and the attempt record already
   * carries its timeout; accepted so call sites can pass their whole deadline context.
   */
  timeoutMs?: number
}

/** One error found while walking a wrapper graph, with how deep it sits (0 = the thrown value). */
interface ErrorNode {
  name: string
  message: string
  code: string
  depth: number
}

interface Rule {
  category: Exclude<ErrorCategory, 'unknown'>
  matches: (node: ErrorNode) => boolean
}

const has = (pattern: RegExp) => (node: ErrorNode): boolean => pattern.test(node.message) || pattern.test(node.code)

/**
 * Ordered from the most specific answer to the least: an explicit "busy", a local conflict or a protocol mismatch
 * explains a failure better than a refused socket, and any definite network answer explains it better than the
 * absence of one (a timeout). When a dial tried several addresses, the most telling of their errors wins.
 *
 * Matching is on names, codes and message text, never on classes: libp2p re-wraps errors (EncryptionFailedError
 * keeps only the message of what it wraps, TCP copies the errno into its message), and errors cross the control
 * channel as plain objects.
 */
const RULES: readonly Rule[] = [
  { category: 'busy', matches: n => n.name === 'BusyError' || n.code.toLowerCase() === 'busy' },
  // The bootstrap completed the handshake and identify, then closed the connection (nodes/admission.ts).
  { category: 'rejected', matches: n => n.name === 'RejectedAfterIdentifyError' || n.code === 'rejected' },
  {
    category: 'already-connected',
    // "Tried to dial self" (DialError), "Can not dial self" (InvalidPeerIdError), a port or memory address in use.
    matches: has(/\bdial self\b|\balready (connected|running|listening|in use)\b|\bEADDRINUSE\b|Duplicate multiaddr connection/i)
  },
  {
    category: 'protocol',
    // "Missing newline": multistream-select got bytes that are not a libp2p greeting (e.g. an HTTP server).
    matches: n => n.name === 'UnsupportedProtocolError' || /Protocol selection failed|could not negotiate|Missing newline/i.test(n.message)
  },
  {
    category: 'refused',
    // A memory address with no listener is the in-process equivalent of a closed port. A reset is how a bootstrap at
    // its connection limit says no; a gater denial is a refusal by policy. A remote that drops the connection during
    // the handshake shows up as a reset stream (memory) or an unexpected EOF (TCP) inside EncryptionFailedError.
    matches: n => ['DialDeniedError', 'ConnectionDeniedError', 'StreamResetError', 'UnexpectedEOFError'].includes(n.name) ||
      has(/\bECONNREFUSED\b|\bECONNRESET\b|No memory listener found|Memory Connection closed|Connection denied|Remote closed connection during opening|stream has been reset|Unexpected EOF/i)(n)
  },
  {
    category: 'unreachable',
    // No transport of this node can dial any of the addresses: there is no route from here to there.
    matches: n => n.name === 'NoValidAddressesError' ||
      has(/\b(EHOSTUNREACH|ENETUNREACH|ENETDOWN|EHOSTDOWN|ENOTFOUND|EAI_AGAIN|EADDRNOTAVAIL)\b/)(n)
  },
  {
    category: 'timeout',
    // libp2p's per-address timeout surfaces as EncryptionFailedError "The operation was aborted due to timeout", a
    // TCP connect timeout as "Connection timeout after …ms", an abandoned address as a bare AbortError.
    matches: n => ['TimeoutError', 'AbortError'].includes(n.name) ||
      has(/\bETIMEDOUT\b|aborted due to timeout|Connection timeout|timed out/i)(n)
  }
]

export function categorizeBootstrapError (error: unknown, context: CategorizeContext = {}): CategorizedError {
  const nodes = walk(error)
  const category: ErrorCategory = context.timedOut === true
    ? 'timeout'
    : RULES.find(rule => nodes.some(rule.matches))?.category ?? 'unknown'
  const rule = RULES.find(r => r.category === category)
  const candidates = rule == null ? nodes : nodes.filter(rule.matches)
  // With the caller's deadline the category is given, and the abort may have produced anything: report the root.
  const root = deepest(candidates.length > 0 ? candidates : nodes)
  return { category, ...BOOTSTRAP_ERROR_MESSAGES[category], detail: describe(root) }
}

/** Every error reachable through `cause` and `errors` (AggregateError), depth first, each visited once. */
function walk (error: unknown): ErrorNode[] {
  const out: ErrorNode[] = []
  const seen = new Set<unknown>()
  const visit = (value: unknown, depth: number): void => {
    // Cycles happen (a cause pointing back at its wrapper); depth caps a pathological chain.
    if (value == null || seen.has(value) || depth > 32) return
    seen.add(value)
    out.push(toNode(value, depth))
    if (typeof value !== 'object') return
    const { cause, errors, error: inner } = value as { cause?: unknown, errors?: unknown, error?: unknown }
    visit(cause, depth + 1)
    if (Array.isArray(errors)) for (const e of errors) visit(e, depth + 1)
    // An ErrorEvent (a socket's or a worker's 'error' event) carries its error here.
    if (isEvent(value)) visit(inner, depth + 1)
  }
  visit(error, 0)
  return out.length > 0 ? out : [toNode(error, 0)]
}

/** A DOM-style event thrown or rejected as if it were an error (String() of it is "[object Event]"). */
function isEvent (value: unknown): value is { type: string, message?: unknown } {
  return typeof Event !== 'undefined' && value instanceof Event
}

function toNode (value: unknown, depth: number): ErrorNode {
  if (isEvent(value)) {
    const message = typeof value.message === 'string' && value.message !== '' ? value.message : `a "${value.type}" event without an error`
    return { name: value.constructor.name, message, code: '', depth }
  }
  if (typeof value === 'object' && value !== null) {
    const { name, message, code } = value as { name?: unknown, message?: unknown, code?: unknown }
    return {
      name: typeof name === 'string' && name !== '' ? name : 'Error',
      message: typeof message === 'string' ? message : '',
      // DOMException carries a numeric legacy code (23 for TimeoutError); only string codes (errno names) mean much.
      code: typeof code === 'string' ? code : '',
      depth
    }
  }
  return { name: 'Error', message: String(value), code: '', depth }
}

/**
 * The first of the deepest that says something: the root cause along the first wrapper chain that explains the
 * category. An error with no message ("Error") tells the reader nothing, so a wrapper's text is better than it.
 */
function deepest (nodes: ErrorNode[]): ErrorNode {
  const telling = nodes.filter(n => n.message !== '')
  const pool = telling.length > 0 ? telling : nodes
  let best = pool[0] as ErrorNode
  for (const node of pool) if (node.depth > best.depth) best = node
  return best
}

function describe (node: ErrorNode): string {
  return node.message === '' ? `${node.name} (no message)` : `${node.name}: ${node.message}`
}

/**
 * An error as one readable line for events and reports, never a stack and never "[object Event]": the thrown
 * value, and, when it wraps something (cause, AggregateError, an ErrorEvent's error), the root cause too.
 */
export function describeError (err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err)
  // A ZodError's message is its issues as pretty-printed JSON: say which value is wrong in one line instead.
  if (err instanceof z.core.$ZodError) {
    const issues = err.issues.slice(0, 3).map(i => `${i.path.length > 0 ? i.path.join('.') : '(value)'}: ${i.message}`)
    return `invalid value: ${issues.join('; ')}${err.issues.length > 3 ? `; and ${err.issues.length - 3} more` : ''}`
  }
  const nodes = walk(err)
  const top = nodes[0] as ErrorNode
  const root = deepest(nodes)
  if (root === top || root.depth === 0) return describe(top.message === '' ? root : top)
  if (top.message === '' || top.message.includes(root.message)) return describe(root)
  return `${describe(top)} (cause: ${describe(root)})`
}
