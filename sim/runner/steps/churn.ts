import { sleep } from '../../../nodes/util.ts'
import { prng } from '../../seed.ts'
import type { RunContext } from '../context.ts'
import { startHarnessHealth } from '../harness-health.ts'
import { bootstrapAddrs, startNode, stopNode } from '../lifecycle.ts'
import { runningNode, type Phase } from '../node-state.ts'
import { judgeWithDepartures } from '../../../nodes/discovery-verdict.ts'
import { forEach, inProcess, type StepHandlers, type StepOf } from './handler.ts'

/** churn: a seeded population schedule (the release profile's), as a step. */
export const churnSteps: StepHandlers<'churn'> = {
  churn: async (ctx, step, refs) => { await churn(ctx, step, refs) }
}

/** Picks `n` distinct items with the run's seeded generator. */
function pick<T> (items: T[], n: number, random: () => number): T[] {
  const pool = [...items]
  const out: T[] = []
  while (out.length < n && pool.length > 0) out.push(pool.splice(Math.floor(random() * pool.length), 1)[0]!)
  return out
}

const DOWN: ReadonlySet<Phase> = new Set(['declared', 'stopped', 'killed', 'recovering'])

/** Peer IDs of the run's nodes that are down now: stopped or killed by the schedule, or never started. */
function departedPeers (ctx: RunContext): Set<string> {
  return new Set([...ctx.roster.nodes.values()].filter(n => n.peerId != null && DOWN.has(n.state.phase)).map(n => n.peerId!))
}

/** The verification's checks, in the plan's order, for saying which one failed. */
const CHECKS = ['bootstrapConnected', 'routingTablePopulated', 'eventsWorking', 'dhtReadWrite', 'peerDialing', 'fileDiscovery'] as const

async function churn (ctx: RunContext, step: StepOf<'churn'>, population: string[]): Promise<void> {
  const random = prng(`${ctx.seed}/${ctx.scenario.name}/${ctx.evidence.currentStep}`)
  let connects = 0
  let connected = 0
  let verifications = 0
  let verified = 0
  const failures: string[] = []
  const unverified: string[] = []
  const starved: string[] = []
  const departedNotes: string[] = []
  for (let round = 0; round < step.rounds; round++) {
    const online = population.filter(n => runningNode(ctx.roster.node(n).state) != null)
    const offline = population.filter(n => runningNode(ctx.roster.node(n).state) == null)
    const leavers = pick(online, Math.floor(online.length * step.leaveFraction), random)
    const joiners = pick(offline, offline.length === 0 ? 0 : Math.max(1, Math.round(offline.length * step.joinFraction)), random)
    await forEach(leavers, async n => { await stopNode(ctx, ctx.roster.node(n), random() < step.killFraction ? 'kill' : 'stop') })
    // Joins arrive in small batches, as users do, rather than as one synchronized burst.
    for (let i = 0; i < joiners.length; i += 10) {
      await forEach(joiners.slice(i, i + 10), async n => {
        await startNode(ctx, ctx.roster.node(n))
        const r = await ctx.roster.handle(n).call('connectWithTimeout', { bootstrapAddrs: bootstrapAddrs(ctx, n, ctx.roster.node(n).bootstrapRefs) }, { signal: ctx.signal })
        connects++
        if (r.success) connected++
        else failures.push(`${n}: ${r.error?.category ?? 'failed'}`)
      })
    }
    await sleep(ctx.scaled(step.intervalMs), ctx.signal)
    const sample = pick(population.filter(n => runningNode(ctx.roster.node(n).state) != null), step.verifySample, random)
    // One after another, as users would: concurrent verifications are the harness's own load (in memory mode every
    // node shares one event loop), and under a loaded runner they timed out each other's DHT tests (issue 10).
    for (const n of sample) {
      const meter = startHarnessHealth()
      const downBefore = departedPeers(ctx)
      const reported = await ctx.roster.handle(n).call('verifyPeerDiscovery', {}, { signal: ctx.signal })
      const health = meter.stop()
      // The roster knows who the schedule had taken away; the node only knows who did not answer.
      const downAfter = departedPeers(ctx)
      const { status: st, departedDials } = judgeWithDepartures(reported, p => downBefore.has(p) || downAfter.has(p))
      if (departedDials.length > 0) departedNotes.push(`${n}: ${departedDials.map(p => ctx.roster.nameOfPeer(p)).join(', ')}`)
      const why = `${n} ${st.overall}: ${CHECKS.filter(c => !st[c] && !st.skipped.includes(c)).join(', ') || st.message}`
      if (st.overall !== 'verified' && health.overloaded && inProcess(ctx)) {
        // The harness, not the network, may have failed it: reported, and left out of the measured share.
        starved.push(`${why} (${health.overloadReason ?? 'harness overloaded'})`)
        continue
      }
      verifications++
      if (st.overall === 'verified') verified++
      else unverified.push(why)
    }
  }
  const pct = (a: number, b: number): number => b === 0 ? 100 : Math.round(a / b * 10_000) / 100
  if (step.expect?.connectSuccessPercent != null) {
    ctx.evidence.expect({ id: `${ctx.evidence.currentStep}-churn-connect`, description: `peers joining during churn connect (failover included) at least ${step.expect.connectSuccessPercent} % of the time`, expected: `≥ ${step.expect.connectSuccessPercent} %`, actual: `${pct(connected, connects)} % of ${connects}${failures.length > 0 ? ` (failed: ${failures.slice(0, 5).join(', ')})` : ''}`, passed: pct(connected, connects) >= step.expect.connectSuccessPercent, planRef: step.planRef })
  }
  if (step.expect?.verifiedPercent != null) {
    // Verifications that failed while the harness itself was overloaded are not the network's: they are left out
    // and said, and when they are the majority of the sample, nothing was measured and the check fails as such.
    const measurable = verifications >= starved.length
    const starvedNote = starved.length > 0 ? `; ${starved.length} failed while the harness was overloaded, not counted: ${starved.slice(0, 3).join('; ')}` : ''
    const departedNote = departedNotes.length > 0 ? `; verified although dials to peers the schedule had stopped went unanswered (not a discovery failure): ${departedNotes.slice(0, 3).join('; ')}` : ''
    ctx.evidence.expect({ id: `${ctx.evidence.currentStep}-churn-verified`, description: `sampled peers verify discovery at least ${step.expect.verifiedPercent} % of the time (verifications failed while the harness itself was overloaded are left out)`, expected: `≥ ${step.expect.verifiedPercent} %`, actual: `${measurable ? `${pct(verified, verifications)} % of ${verifications}` : `not measurable: the harness was overloaded during ${starved.length} of ${starved.length + verifications} verifications`}${unverified.length > 0 ? ` (failed checks: ${unverified.slice(0, 5).join('; ')})` : ''}${departedNote}${starvedNote}`, passed: measurable && pct(verified, verifications) >= step.expect.verifiedPercent, planRef: step.planRef })
  }
}
