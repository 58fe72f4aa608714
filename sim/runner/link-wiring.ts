import type { Link, LinkProxies } from '../faults/link-proxies.ts'
import { checkNoBypass } from '../faults/bypass.ts'
import { resolveRefs, type LinkTarget, type Scenario } from '../../scenarios/schema.ts'
import type { RunContext } from './context.ts'
import { runningNode } from './node-state.ts'
import { describeError } from '../../nodes/util.ts'
import { tcpHostPort } from '../../nodes/supervisor/probes.ts'

/**
 * The run's nodes wired through their links' Toxiproxy proxies (one per ordered pair), the links a fault step names,
 * and the check afterwards that no traffic went around a faulted proxy. The fault steps are in steps/faults.ts.
 */

/** Does the scenario need fault proxies between its nodes? */
export function usesFaults (scenario: Scenario): boolean {
  return scenario.steps.some(s => s.action === 'fault' || s.action === 'sweep')
}

const linkName = (from: string, to: string): string => `${from}->${to}`

/**
 * One proxy per ordered pair of chiral-sim nodes, and each node told to reach the others only through its own
 * links: the others' real addresses are refused by its connection gater, their proxied ones are in its peer
 * store. That makes the proxied addresses the only ones in play, whatever identify and the DHT spread.
 */
export async function createLinks (ctx: RunContext, proxies: LinkProxies): Promise<void> {
  const nodes = [...ctx.roster.nodes.values()].filter(n => n.config != null && n.peerId != null)
  for (const from of nodes) {
    for (const to of nodes) {
      if (from === to) continue
      const real = to.config!.listen?.[0]
      if (real == null) throw new Error(`node "${to.name}" has no fixed address to proxy`)
      ctx.faultState.links.set(linkName(from.name, to.name), await proxies.createLink(linkName(from.name, to.name), tcpHostPort(real)))
    }
  }
  for (const node of nodes) {
    const others = nodes.filter(o => o !== node)
    // Other nodes' routes travel too: kad-dht answers carry the responder's peer-store addresses, its proxies
    // included, so a node must refuse every proxy that is not one of its own links as well as the real addresses.
    const foreignProxies = [...ctx.faultState.links.entries()]
      .filter(([name]) => !name.startsWith(`${node.name}->`))
      .map(([, link]) => `/ip4/${link.listen.host}/tcp/${link.listen.port}`)
    node.config = {
      ...node.config!,
      network: {
        denyDial: [...others.map(o => o.config!.listen![0]!), ...foreignProxies],
        routes: others.map(o => ({ peerId: o.peerId!, addrs: [proxiedAddr(ctx, node.name, o.name)!] }))
      }
    }
  }
}

/** The address `from` dials to reach `to`: its link's proxy when links are proxied. */
export function proxiedAddr (ctx: RunContext, from: string, to: string): string | undefined {
  const link = ctx.faultState.links.get(linkName(from, to))
  const peerId = ctx.roster.node(to).peerId
  return link == null || peerId == null ? undefined : `/ip4/${link.listen.host}/tcp/${link.listen.port}/p2p/${peerId}`
}

export function resolveLinks (ctx: RunContext, target: LinkTarget): Array<{ name: string, link: Link }> {
  const all = [...ctx.roster.nodes.values()].filter(n => n.config != null).map(n => n.name)
  const refs = (r: string[] | undefined): string[] => r == null ? all : resolveRefs(ctx.scenario.nodes, r)
  const names = new Set<string>()
  for (const l of target.links ?? []) names.add(l)
  if (target.between != null) {
    const [a, b] = target.between.map(g => resolveRefs(ctx.scenario.nodes, g)) as [string[], string[]]
    for (const x of a) for (const y of b) { names.add(linkName(x, y)); names.add(linkName(y, x)) }
  }
  for (const x of target.around == null ? [] : resolveRefs(ctx.scenario.nodes, target.around)) {
    for (const y of all) if (x !== y) { names.add(linkName(x, y)); names.add(linkName(y, x)) }
  }
  if (target.from != null || target.to != null) {
    for (const x of refs(target.from)) for (const y of refs(target.to)) if (x !== y) names.add(linkName(x, y))
  }
  return [...names].map(name => {
    const link = ctx.faultState.links.get(name)
    if (link == null) throw new Error(`no link "${name}": links run between bootstraps and peers (blackholes and external nodes have none)`)
    return { name, link }
  })
}

/**
 * Outbound connections that did not go through their link's proxy, from every running node's own connection list.
 * Taken before the nodes stop; every connection is someone's outbound one, so inbound ones need no check.
 */
export async function connectionsOutsideProxies (ctx: RunContext): Promise<Map<string, Array<{ from: string, to: string, remoteAddr: string }>>> {
  const out = new Map<string, Array<{ from: string, to: string, remoteAddr: string }>>()
  for (const node of ctx.roster.nodes.values()) {
    const running = runningNode(node.state)
    if (running == null) continue
    const inspection = await running.handle.call('inspect', {}, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined)
    for (const c of inspection?.connections ?? []) {
      if (c.direction !== 'outbound') continue
      const to = ctx.roster.nameOfPeer(c.peerId)
      const link = ctx.faultState.links.get(linkName(node.name, to))
      if (link == null || c.remoteAddr.includes(`/tcp/${link.listen.port}/`) || c.remoteAddr.endsWith(`/tcp/${link.listen.port}`)) continue
      const key = linkName(node.name, to)
      out.set(key, [...(out.get(key) ?? []), { from: node.name, to, remoteAddr: c.remoteAddr }])
    }
  }
  return out
}

/** After the nodes stopped: the faulted links' byte counters and the connections seen outside them → a verdict. */
export async function bypassVerdict (ctx: RunContext, outside: Map<string, Array<{ from: string, to: string, remoteAddr: string }>>): Promise<string | undefined> {
  const faulted = [...new Set(ctx.evidence.faults.map(f => f.link))]
  const inputs = []
  for (const name of faulted) {
    const link = ctx.faultState.links.get(name)
    if (link == null) continue
    const bytes = await link.bytes().catch((err: unknown) => { throw new Error(`cannot read the byte counters of ${name}: ${describeError(err)}`) })
    inputs.push({ link: name, proxyBytes: bytes, connectionsOutsideProxy: outside.get(name) ?? [] })
  }
  const verdict = checkNoBypass(inputs)
  return verdict.valid ? undefined : `traffic bypassed a faulted link's proxy, so the fault may not have applied: ${verdict.problems.join('; ')}`
}
