/** Renders a results file as the text table and the markdown table: node bench/render.ts [bench/results/latest.json] [--markdown] */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BenchResults } from './main.ts'
import { renderMarkdown, renderTable } from './table.ts'

const args = process.argv.slice(2)
const file = args.find(a => !a.startsWith('--')) ?? path.join(path.dirname(fileURLToPath(import.meta.url)), 'results', 'latest.json')
const results = JSON.parse(await readFile(file, 'utf8')) as BenchResults
process.stdout.write((args.includes('--markdown') ? renderMarkdown(results) : renderTable(results)) + '\n')
