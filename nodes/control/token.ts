import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

/**
 * The control channel's secret (GUIDE.md's contract, followed by every node implementation): whoever starts a node
 * generates a random token for it, writes it to a file only its owner can read, and passes the file's PATH as
 * `--control-token-file` (or env CHIRAL_CONTROL_TOKEN_FILE). The token itself never appears on a command line or
 * in an environment, where `ps` and `docker inspect` would show it. Every request carries it as
 * `Authorization: Bearer <token>`.
 */

export const CONTROL_TOKEN_FLAG = '--control-token-file'
export const CONTROL_TOKEN_ENV = 'CHIRAL_CONTROL_TOKEN_FILE'
/** 32 random bytes, hex: the contract's format. */
export const CONTROL_TOKEN_BYTES = 32
/** What a node accepts from an operator's file: RFC 6750's token68 characters, long enough not to be guessed. */
const TOKEN_PATTERN = /^[A-Za-z0-9._~+/-]{32,1024}=*$/

export function generateControlToken (): string {
  return randomBytes(CONTROL_TOKEN_BYTES).toString('hex')
}

export class ControlTokenError extends Error {
  override readonly name = 'ControlTokenError'
}

/**
 * Reads a token file for a node. Refuses a file that others can read or write: a token leaked through a lax mode is
 * no secret, and saying so beats serving with it.
 */
export function readControlTokenFile (file: string): string {
  let mode: number
  let text: string
  try {
    mode = statSync(file).mode
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ControlTokenError(`cannot read control token file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new ControlTokenError(`control token file ${file} is accessible to group or others (mode ${(mode & 0o777).toString(8).padStart(3, '0')}); run: chmod 600 ${file}`)
  }
  const token = text.trim()
  if (!TOKEN_PATTERN.test(token)) {
    throw new ControlTokenError(`control token file ${file} does not hold a token: expected one line of at least 32 characters [A-Za-z0-9._~+/-] (e.g. from: openssl rand -hex 32)`)
  }
  return token
}

/** A token written to a fresh 0600 file in a fresh 0700 directory; `remove()` deletes both. */
export interface ControlTokenFile {
  readonly token: string
  readonly path: string
  remove (): void
}

/**
 * For a starter on this machine (process backend, supervisor). The node reads the file once at start, so the starter
 * removes it as soon as the node is ready (or failed): no secret is left on disk, whatever happens to the harness later.
 */
export function writeControlTokenFile (token = generateControlToken()): ControlTokenFile {
  const dir = mkdtempSync(path.join(tmpdir(), 'chiral-token-'))
  const file = path.join(dir, 'control-token')
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' })
  return {
    token,
    path: file,
    remove: () => { rmSync(dir, { recursive: true, force: true }) }
  }
}

/** The request header every client sends. */
export function bearer (token: string): string {
  return `Bearer ${token}`
}
