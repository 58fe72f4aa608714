import { parseArgs } from 'node:util'
import { createPinger } from './probes.ts'

/**
 * Check 3 of ops/bootstrap-health.sh: one libp2p ping of a bootstrap, for shell scripts.
 *
 *   node nodes/supervisor/ping-cli.ts <multiaddr with /p2p/> [--timeout-ms 5000] [--protocol-prefix ipfs]
 *
 * Prints `ok <ms>` and exits 0, or `fail <reason>` and exits 1; 2 for a bad command line. The deadline covers the
 * whole run, node start-up included, so a caller's own `timeout` never has to fire.
 */
const USAGE = 'usage: node nodes/supervisor/ping-cli.ts <multiaddr/p2p/PEER> [--timeout-ms 5000] [--protocol-prefix ipfs]'

async function main (): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      options: { 'timeout-ms': { type: 'string', default: '5000' }, 'protocol-prefix': { type: 'string', default: 'ipfs' } },
      allowPositionals: true,
      strict: true
    })
  } catch (err) {
    process.stderr.write(`ping-cli: ${(err as Error).message}; ${USAGE}\n`)
    return 2
  }
  const address = parsed.positionals[0]
  const timeoutMs = Number(parsed.values['timeout-ms'])
  if (address == null || parsed.positionals.length > 1 || !/\/p2p\/\w+$/.test(address) || !Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    process.stderr.write(`ping-cli: ${USAGE}\n`)
    return 2
  }
  const signal = AbortSignal.timeout(timeoutMs)
  const pinger = await createPinger({ protocolPrefix: parsed.values['protocol-prefix'] })
  try {
    const result = await pinger.ping(address, signal)
    process.stdout.write(result.ok ? `ok ${(result.latencyMs ?? 0).toFixed(1)}\n` : `fail ${signal.aborted ? `no answer within ${timeoutMs} ms` : result.detail}\n`)
    return result.ok ? 0 : 1
  } finally {
    await pinger.close().catch(() => {})
  }
}

// Exit explicitly: a half-closed dial left by a frozen bootstrap must not keep the health script waiting.
process.exit(await main())
