/**
 * A minimal Toxiproxy HTTP client used by the harness itself. toxiproxy-node-client (exposed as
 * `ToxiproxyServer.client` for callers who want it) has no request deadline and drops the server's error body
 * ("Request failed with status code 409"); the harness needs both: every call here is bounded in time, and a
 * failure says which request, which status and what Toxiproxy answered ("toxic already exists").
 */

export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000

export class ToxiproxyApiError extends Error {
  readonly status: number | null
  readonly method: string
  readonly path: string

  constructor (method: string, path: string, status: number | null, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'ToxiproxyApiError'
    this.method = method
    this.path = path
    this.status = status
  }
}

export interface RequestOptions {
  timeoutMs?: number
  signal?: AbortSignal
  /** Return the body as text instead of parsing JSON (/metrics, and /version of old servers). */
  text?: boolean
}

export async function toxiproxyRequest (baseUrl: string, method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<unknown> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
  const timeout = AbortSignal.timeout(timeoutMs)
  const signal = opts.signal != null ? AbortSignal.any([timeout, opts.signal]) : timeout
  const url = new URL(path, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`)
  const init: RequestInit = { method, signal }
  if (body !== undefined) {
    init.body = JSON.stringify(body)
    init.headers = { 'content-type': 'application/json' }
  }
  let res: Response
  let text: string
  try {
    res = await fetch(url, init)
    text = await res.text()
  } catch (err) {
    if (timeout.aborted) {
      throw new ToxiproxyApiError(method, path, null, `Toxiproxy ${method} ${url.href} did not answer within ${timeoutMs} ms`, { cause: err })
    }
    if (opts.signal?.aborted === true) throw opts.signal.reason
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err
    const detail = cause instanceof Error ? cause.message : String(cause)
    throw new ToxiproxyApiError(method, path, null, `Toxiproxy ${method} ${url.href} failed: ${detail}`, { cause: err })
  }
  if (!res.ok) {
    let detail = text.trim()
    try {
      const parsed: unknown = JSON.parse(text)
      if (typeof parsed === 'object' && parsed !== null && 'error' in parsed && typeof parsed.error === 'string') detail = parsed.error
    } catch {}
    throw new ToxiproxyApiError(method, path, res.status, `Toxiproxy ${method} ${path} → ${res.status}: ${detail === '' ? res.statusText : detail}`)
  }
  if (opts.text === true) return text
  if (text.trim() === '') return undefined
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new ToxiproxyApiError(method, path, res.status, `Toxiproxy ${method} ${path} answered non-JSON: ${text.slice(0, 200)}`, { cause: err })
  }
}
