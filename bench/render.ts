/** Renders a results file as the text table and the markdown table: node bench/render.ts [bench/results/latest.json] [--markdown] */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BenchResults } from './results.ts'
import { renderMarkdown, renderTable } from './table.ts'

const args = process.argv.slice(2)
const file = args.find(a => !a.startsWith('--')) ?? path.join(path.dirname(fileURLToPath(import.meta.url)), 'results', 'latest.json')
const results = JSON.parse(await readFile(file, 'utf8')) as BenchResults
if (results.schemaVersion !== 2) {
  process.stderr.write(`${file}: written by an older bench (schemaVersion ${String(results.schemaVersion)}); run \`npm run bench\` again to get a file this version renders\n`)
  process.exit(2)
}
process.stdout.write((args.includes('--markdown') ? renderMarkdown(results) : renderTable(results)) + '\n')
