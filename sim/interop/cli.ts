import { appendFile, mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { InputError } from '../../scenarios/load.ts'
import { ModeSchema } from '../../scenarios/record.ts'
import { newSeed } from '../seed.ts'
import { BOOTSTRAP_IMPLS, CONFIGS, PEER_IMPLS, TEST_NAMES, runInteropMatrix, type InteropMatrix } from './matrix.ts'
import { cellMark, matrixHtml, matrixMarkdown, summarizeMatrix } from './render.ts'

export const INTEROP_HELP = `chiral-sim interop [options]

Runs the interop matrix: the plan's Tests 1, 3, 4, 5, 6 and the asymmetry reproductions with the bootstrap
replaced by a plain js-libp2p node and the rust-libp2p and go-libp2p reference nodes (build them with
\`bash scripts/setup-interop.sh\`), in each configuration real deployments use. Writes interop-matrix.json,
interop-matrix.html and interop-matrix.md to the report folder, prints the markdown, and appends it to
$GITHUB_STEP_SUMMARY when that is set. Exit 0 when every cell that ran concludes what a correct harness concludes
(a cell whose peer could not make one of its checks, ◐, has no verdict and is listed with the check, not counted).

Options:
  --mode MODE          tcp (default) | process | docker (the rust and go bootstraps as containers, from
                       images built from interop/bin, cached by the binaries' hash)
  --seed N             seed for the peers' identities and schedules (default: random, printed)
  --bootstraps LIST    comma-separated, of ${BOOTSTRAP_IMPLS.join(', ')} (default: all)
  --configs LIST       of ${CONFIGS.join(', ')} (default: all)
  --tests LIST         of ${TEST_NAMES.join(', ')} (default: all)
  --peers LIST         of ${PEER_IMPLS.join(', ')} (default: all; js: chiral-sim's own, go and rust: the
                       reference nodes serving the control channel, tcp and process modes)
  --report-dir DIR     where the matrix goes (default: chiral-reports)
  -h, --help           this help`

function list<T extends string> (flag: string, value: string | undefined, allowed: readonly T[]): T[] | undefined {
  if (value == null) return undefined
  const items = value.split(',').map(s => s.trim()).filter(Boolean)
  const bad = items.filter(i => !allowed.includes(i as T))
  if (bad.length > 0 || items.length === 0) throw new InputError(`--${flag} ${value}: ${bad.length > 0 ? `unknown ${bad.join(', ')}` : 'empty'}; use a comma-separated list of ${allowed.join(', ')}\n\n${INTEROP_HELP}`)
  return items as T[]
}

export async function interopCommand (args: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>
  try {
    ({ values } = parseArgs({
      args,
      options: {
        mode: { type: 'string' }, seed: { type: 'string' }, bootstraps: { type: 'string' }, configs: { type: 'string' },
        tests: { type: 'string' }, peers: { type: 'string' }, 'report-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' }
      },
      strict: true
    }))
  } catch (err) {
    throw new InputError(`${(err as Error).message}\n\n${INTEROP_HELP}`)
  }
  if (values.help === true) { console.log(INTEROP_HELP); return 0 }
  const mode = ModeSchema.safeParse(values.mode ?? 'tcp')
  if (!mode.success || mode.data === 'memory') throw new InputError(`--mode ${String(values.mode)}: the bootstraps are processes reached over TCP; use tcp, process or docker`)
  const seedText = values.seed as string | undefined
  const seed = seedText == null ? newSeed() : Number(seedText)
  if (!Number.isInteger(seed) || seed < 0) throw new InputError(`--seed ${seedText}: the seed is a whole number ≥ 0`)
  const reportDir = (values['report-dir'] as string | undefined) ?? 'chiral-reports'
  const controller = new AbortController()
  const onSigint = (): void => { console.error('\nchiral-sim: interrupted — tearing down'); controller.abort(new Error('interrupted')) }
  process.once('SIGINT', onSigint)
  process.once('SIGTERM', onSigint)
  console.log(`chiral-sim interop: mode ${mode.data}, seed ${seed}`)
  let matrix: InteropMatrix
  try {
    matrix = await runInteropMatrix({
      mode: mode.data,
      seed,
      bootstraps: list('bootstraps', values.bootstraps as string | undefined, BOOTSTRAP_IMPLS),
      configs: list('configs', values.configs as string | undefined, CONFIGS),
      tests: list('tests', values.tests as string | undefined, TEST_NAMES),
      peers: list('peers', values.peers as string | undefined, PEER_IMPLS),
      signal: controller.signal,
      onCell: c => {
        if (c.status === 'not-applicable' || c.status === 'not-available') return
        const mark = cellMark(c)
        console.log(`${mark.symbol} ${c.bootstrap}/${c.config}/${c.test} (peers ${c.peer}): ${mark.text}${c.durationMs != null ? ` ${(c.durationMs / 1000).toFixed(1)}s` : ''}${c.asExpected === false && c.detail != null ? ` — ${c.detail.slice(0, 200)}` : ''}`)
      }
    })
  } catch (err) {
    if (controller.signal.aborted) return 130
    throw err
  } finally {
    process.off('SIGINT', onSigint)
    process.off('SIGTERM', onSigint)
  }
  await mkdir(reportDir, { recursive: true })
  const markdown = matrixMarkdown(matrix)
  await writeFile(path.join(reportDir, 'interop-matrix.json'), `${JSON.stringify(matrix, null, 2)}\n`)
  await writeFile(path.join(reportDir, 'interop-matrix.html'), matrixHtml(matrix))
  await writeFile(path.join(reportDir, 'interop-matrix.md'), markdown)
  if ((process.env.GITHUB_STEP_SUMMARY ?? '') !== '') await appendFile(process.env.GITHUB_STEP_SUMMARY!, markdown)
  console.log(`\n${markdown}`)
  console.log(`matrix: ${path.join(reportDir, 'interop-matrix.json')}, .html, .md`)
  return summarizeMatrix(matrix).unexpected === 0 ? 0 : 1
}
