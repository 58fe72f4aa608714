/**
 * One scale measurement in its own process (run by bench/main.ts with --max-old-space-size=4096), so one N's
 * crash or memory blow-up does not take the others down and RSS is this N's alone. Prints progress on stderr and
 * the result as the last line of stdout, prefixed with RESULT.
 */
import { parseArgs } from 'node:util'
import { measureScale } from './scale.ts'
import { parseProfile } from './profiles.ts'

const { values } = parseArgs({
  options: {
    n: { type: 'string' },
    seed: { type: 'string', default: '1' },
    profile: { type: 'string', default: 'kad-dht-defaults' },
    batch: { type: 'string' },
    deadline: { type: 'string' },
    pairs: { type: 'string' },
    'verify-concurrency': { type: 'string' },
    monitor: { type: 'boolean', default: false },
    'skip-dht-rw': { type: 'boolean', default: false },
    newcomers: { type: 'string' },
    'stack-traces': { type: 'boolean', default: false }
  }
})
// Every Error captures a stack when built, and js-libp2p builds them by the thousand as control flow (noise's length
// decoder throws a RangeError for each frame it has to wait for, aborted operations an AbortError): with stacks,
// N = 100 took 155 s of CPU instead of 107 s (paired runs, bench/RESULTS.md). No code under test reads a stack; --stack-traces keeps them.
if (!values['stack-traces']) Error.stackTraceLimit = 0
const num = (s: string | undefined): number | undefined => s == null ? undefined : Number(s)
const result = await measureScale({
  n: Number(values.n),
  seed: Number(values.seed),
  profile: parseProfile(values.profile),
  batchSize: num(values.batch),
  convergeDeadlineMs: num(values.deadline),
  samplePairs: num(values.pairs),
  verifyConcurrency: num(values['verify-concurrency']),
  autoMonitor: values.monitor,
  skipDhtReadWrite: values['skip-dht-rw'],
  newcomers: num(values.newcomers),
  onProgress: msg => { process.stderr.write(`  ${msg}\n`) }
})
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
// libp2p leaves nothing running after stop(), but a child must never hang its parent.
setTimeout(() => process.exit(0), 100).unref()
