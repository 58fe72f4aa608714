import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import type { z } from 'zod'
import { NodeConfigSchema, type NodeConfig } from './config.ts'
import { serveControl, type ControlServer } from './control/server.ts'
import { CONTROL_TOKEN_ENV, ControlTokenError, readControlTokenFile } from './control/token.ts'
import { LocalNode } from './node.ts'
import { describeError, withDeadline } from './util.ts'

/**
 * The node entry point for process and docker modes:
 *
 *   node nodes/main.ts --config '<json>' | --config-file F     (or env CHIRAL_NODE_CONFIG)
 *                      --control-token-file F                  (or env CHIRAL_CONTROL_TOKEN_FILE)
 *                      [--control-host 127.0.0.1] [--control-port 0] [--exit-on-stdin-close]
 *
 * The control flags default to env CHIRAL_CONTROL_HOST / CHIRAL_CONTROL_PORT (the docker image sets 0.0.0.0:7070).
 * The token file (mode 0600, one line: the token) is required: the control channel can stop the node, so it
 * answers only to whoever started it (nodes/control/token.ts). `--no-control` serves no control channel at all (a
 * black-box bootstrap; its READY line then has no "control").
 *
 * stdout carries exactly one line, `CHIRAL_READY {"control":…,"peerId":…,"multiaddrs":[…]}`, which the backends
 * parse; everything else goes to stderr. Exit codes: 0 after SIGTERM/SIGINT or the `shutdown` command, 1 when the
 * node cannot start or stop, 2 for a bad command line or config (one line naming the field, no stack).
 */

export const READY_PREFIX = 'CHIRAL_READY '
export const EXIT_USAGE = 2
export const EXIT_FAILURE = 1
/** libp2p stops in well under a second; past this the process is wedged and exiting is the only useful thing left. */
const STOP_DEADLINE_MS = 10_000

export interface ReadyLine {
  control: string
  peerId: string
  multiaddrs: string[]
}

class UsageError extends Error {
  override readonly name = 'UsageError'
}

const USAGE = 'usage: node nodes/main.ts (--config <json> | --config-file <path>) (--control-token-file <path> | --no-control) [--control-host <ip>] [--control-port <port>] [--exit-on-stdin-close]; or set CHIRAL_NODE_CONFIG and CHIRAL_CONTROL_TOKEN_FILE'
const TOKEN_HINT = `create one with: (umask 077; openssl rand -hex 32 > token) and pass --control-token-file token (or set ${CONTROL_TOKEN_ENV}), or run without a control channel: --no-control`

interface Args {
  config: NodeConfig
  /** Null with --no-control: a plain libp2p node (a black-box bootstrap), stopped by signals only. */
  controlToken: string | null
  controlHost: string
  controlPort: number
  /**
   * A parent that spawns the node keeps its stdin open; the pipe closes when the parent dies, however it dies
   * (SIGKILL included, when no 'exit' handler runs), so the node cannot outlive the harness that started it.
   */
  exitOnStdinClose: boolean
}

export function parseCommandLine (argv: string[], env: NodeJS.ProcessEnv): Args {
  let values: { config?: string, 'config-file'?: string, 'control-token-file'?: string, 'no-control'?: boolean, 'control-host'?: string, 'control-port'?: string, 'exit-on-stdin-close'?: boolean }
  try {
    values = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        'config-file': { type: 'string' },
        'control-token-file': { type: 'string' },
        'no-control': { type: 'boolean' },
        'control-host': { type: 'string' },
        'control-port': { type: 'string' },
        'exit-on-stdin-close': { type: 'boolean' }
      },
      strict: true,
      allowPositionals: false
    }).values
  } catch (err) {
    throw new UsageError(`${(err as Error).message}; ${USAGE}`)
  }
  if (values.config != null && values['config-file'] != null) throw new UsageError(`give --config or --config-file, not both; ${USAGE}`)
  let source: string
  let text: string
  if (values.config != null) {
    source = '--config'
    text = values.config
  } else if (values['config-file'] != null) {
    source = values['config-file']
    try {
      text = readFileSync(source, 'utf8')
    } catch (err) {
      throw new UsageError(`cannot read config file ${source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
  } else if (env.CHIRAL_NODE_CONFIG != null && env.CHIRAL_NODE_CONFIG !== '') {
    source = 'CHIRAL_NODE_CONFIG'
    text = env.CHIRAL_NODE_CONFIG
  } else {
    throw new UsageError(`no config given; ${USAGE}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new UsageError(`config from ${source} is not valid JSON: ${(err as Error).message}`)
  }
  const parsed = NodeConfigSchema.safeParse(json)
  if (!parsed.success) {
    const more = parsed.error.issues.length - 1
    throw new UsageError(`invalid config from ${source}: ${describeIssue(parsed.error.issues[0])}${more > 0 ? ` (and ${more} more issue${more > 1 ? 's' : ''})` : ''}`)
  }

  // The image sets CHIRAL_CONTROL_HOST=0.0.0.0 so that a published port reaches the server; a flag still wins.
  const controlHost = values['control-host'] ?? nonEmpty(env.CHIRAL_CONTROL_HOST) ?? '127.0.0.1'
  const portText = values['control-port'] ?? nonEmpty(env.CHIRAL_CONTROL_PORT) ?? '0'
  const controlPort = Number(portText)
  if (!/^\d+$/.test(portText) || controlPort > 65_535) throw new UsageError(`--control-port must be 0–65535, got "${portText}"`)
  const exitOnStdinClose = values['exit-on-stdin-close'] === true
  if (values['no-control'] === true) {
    if (values['control-token-file'] != null) throw new UsageError(`give --control-token-file or --no-control, not both; ${USAGE}`)
    return { config: parsed.data, controlToken: null, controlHost, controlPort, exitOnStdinClose }
  }
  const tokenFile = values['control-token-file'] ?? nonEmpty(env[CONTROL_TOKEN_ENV])
  if (tokenFile == null) throw new UsageError(`no control token file given; ${TOKEN_HINT}`)
  let controlToken: string
  try {
    controlToken = readControlTokenFile(tokenFile)
  } catch (err) {
    if (err instanceof ControlTokenError) throw new UsageError(err.message)
    throw err
  }
  return { config: parsed.data, controlToken, controlHost, controlPort, exitOnStdinClose }
}

function nonEmpty (value: string | undefined): string | undefined {
  return value == null || value === '' ? undefined : value
}

/** One line that names the field: the person reading it is editing a scenario or a JSON blob, not this code. */
function describeIssue (issue: z.core.$ZodIssue | undefined): string {
  if (issue == null) return 'invalid'
  const path = issue.path.map(String).join('.')
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map(k => (path === '' ? k : `${path}.${k}`))
    return `unknown field${keys.length > 1 ? 's' : ''} ${keys.map(k => `"${k}"`).join(', ')}`
  }
  return `field "${path === '' ? '(root)' : path}": ${issue.message}`
}

async function main (): Promise<void> {
  let args: Args
  try {
    args = parseCommandLine(process.argv.slice(2), process.env)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`chiral-node: ${err.message}\n`)
    process.exit(EXIT_USAGE)
  }
  const { config } = args

  let node: LocalNode
  try {
    node = await LocalNode.start(config)
  } catch (err) {
    process.stderr.write(`chiral-node: node "${config.name}" could not start: ${describeError(err)}\n`)
    process.exit(EXIT_FAILURE)
  }

  let control: ControlServer | undefined
  try {
    if (args.controlToken != null) control = await serveControl({ name: node.name, role: node.role, handlers: node.handlers, log: node.log }, { token: args.controlToken, host: args.controlHost, port: args.controlPort })
  } catch (err) {
    process.stderr.write(`chiral-node: node "${config.name}" could not serve its control channel on ${args.controlHost}:${args.controlPort}: ${describeError(err)}\n`)
    await withDeadline(node.stop(), STOP_DEADLINE_MS, `did not finish within ${STOP_DEADLINE_MS} ms`).catch(() => {})
    process.exit(EXIT_FAILURE)
  }

  let exiting = false
  const exit = (reason: string): void => {
    if (exiting) return
    exiting = true
    const forced = setTimeout(() => {
      process.stderr.write(`chiral-node: node "${config.name}" did not stop within ${STOP_DEADLINE_MS} ms after ${reason}; exiting anyway\n`)
      process.exit(EXIT_FAILURE)
    }, STOP_DEADLINE_MS)
    forced.unref()
    void (async () => {
      // The node goes first so that its goodbye reaches peers; the control server last, so callers see it stopping.
      const results = await Promise.allSettled([node.stop()])
      await control?.close()
      const failed = results.find(r => r.status === 'rejected')
      if (failed != null) {
        process.stderr.write(`chiral-node: node "${config.name}" failed to stop cleanly: ${describeError(failed.reason)}\n`)
        process.exit(EXIT_FAILURE)
      }
      // libp2p leaves unref'd timers and sockets in flight; waiting for the loop to drain would only delay the exit.
      process.exit(0)
    })()
  }

  process.once('SIGTERM', () => { exit('SIGTERM') })
  process.once('SIGINT', () => { exit('SIGINT') })
  // The `shutdown` command stops the node itself (after answering); the process follows.
  node.log.subscribe(ev => { if (ev.type === 'node:stopped') exit('the shutdown command') })
  if (args.exitOnStdinClose) {
    process.stdin.on('end', () => { exit('stdin closed (the parent is gone)') })
    process.stdin.on('error', () => { exit('stdin failed (the parent is gone)') })
    process.stdin.resume()
  }

  const ready: Partial<ReadyLine> = { ...(control != null ? { control: control.url } : {}), peerId: node.peerId.toString(), multiaddrs: node.multiaddrs() }
  process.stdout.write(`${READY_PREFIX}${JSON.stringify(ready)}\n`)
}

if (import.meta.main) await main()
