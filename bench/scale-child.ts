/**
 * One scale measurement in its own process (run by bench/main.ts with --max-old-space-size=4096), so one N's
 * crash or memory blow-up does not take the others down and RSS is this N's alone. Prints progress on stderr and
 * the result as the last line of stdout, prefixed with RESULT.
 */
import { parseArgs } from 'node:util'
import { measureScale } from './scale.ts'

const { values } = parseArgs({
  options: {
    n: { type: 'string' },
    seed: { type: 'string', default: '1' },
    batch: { type: 'string' },
    deadline: { type: 'string' },
    pairs: { type: 'string' },
    'verify-concurrency': { type: 'string' },
    monitor: { type: 'boolean', default: false },
    'skip-dht-rw': { type: 'boolean', default: false }
  }
})
const num = (s: string | undefined): number | undefined => s == null ? undefined : Number(s)
const result = await measureScale({
  n: Number(values.n),
  seed: Number(values.seed),
  batchSize: num(values.batch),
  convergeDeadlineMs: num(values.deadline),
  samplePairs: num(values.pairs),
  verifyConcurrency: num(values['verify-concurrency']),
  autoMonitor: values.monitor,
  skipDhtReadWrite: values['skip-dht-rw'],
  onProgress: msg => { process.stderr.write(`  ${msg}\n`) }
})
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
// libp2p leaves nothing running after stop(), but a child must never hang its parent.
setTimeout(() => process.exit(0), 100).unref()
