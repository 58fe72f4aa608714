import { seededBytes } from '../../seed.ts'
import type { RunContext } from '../context.ts'
import type { StepHandlers, StepOf } from './handler.ts'

/** share, search, download: a file through the DHT, as steps. */
export const fileSteps: StepHandlers<'share' | 'search' | 'download'> = {
  share: async (ctx, step) => { await share(ctx, step) },
  search: async (ctx, step) => { await search(ctx, step) },
  download: async (ctx, step) => { await download(ctx, step) }
}

async function share (ctx: RunContext, step: StepOf<'share'>): Promise<void> {
  const bytes = step.file.text != null ? Buffer.from(step.file.text) : seededBytes(`${ctx.seed}/${step.as}`, step.file.sizeBytes ?? 1)
  const rec = await ctx.roster.handle(step.node).call('shareFile', { name: step.file.name, contentBase64: Buffer.from(bytes).toString('base64') }, { signal: ctx.signal })
  ctx.files.set(step.as, { cid: rec.cid, owner: step.node })
}

async function search (ctx: RunContext, step: StepOf<'search'>): Promise<void> {
  const file = ctx.files.get(step.file)
  if (file == null) throw new Error(`file "${step.file}" was not shared`)
  const { providers } = await ctx.roster.handle(step.node).call('getProviderRecords', { cid: file.cid }, { signal: ctx.signal })
  const want = step.expect?.providers
  if (want != null) {
    const got = providers.map(p => ctx.roster.nameOfPeer(p))
    ctx.evidence.expect({ id: `${ctx.evidence.currentStep}-search-${step.node}`, description: `${step.node}'s search for ${step.file} finds ${want.join(', ')} as provider`, expected: want, actual: got, passed: want.every(w => got.includes(w)), planRef: step.planRef })
  }
}

async function download (ctx: RunContext, step: StepOf<'download'>): Promise<void> {
  const file = ctx.files.get(step.file)
  if (file == null) throw new Error(`file "${step.file}" was not shared`)
  const from = step.from != null ? ctx.roster.node(step.from).peerId : undefined
  const r = await ctx.roster.handle(step.node).call('downloadFile', { cid: file.cid, ...(from != null ? { provider: from } : {}) }, { signal: ctx.signal })
  if (step.expect != null) {
    ctx.evidence.expect({ id: `${ctx.evidence.currentStep}-download-${step.node}`, description: `${step.node} downloads ${step.file} and its hash matches`, expected: step.expect.success ? 'downloaded, hash verified' : 'failure', actual: r.success ? `downloaded ${r.size} bytes from ${ctx.roster.nameOfPeer(r.provider ?? '')}, hash ${r.hashVerified ? 'verified' : 'MISMATCH'}` : `failed: ${r.error}`, passed: (r.success && r.hashVerified) === step.expect.success, planRef: step.planRef })
  }
}
