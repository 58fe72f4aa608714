/**
 * @packageDocumentation
 *
 * What the harness needs of its own machine, and nothing a node needs (the node image ships nodes/ alone):
 * `freePort` picks a port outside the kernel's ephemeral range and `canBind` tells whether an address is this
 * machine's (free-port.ts); `startBlackhole` is the plan's hung bootstrap, a listener that accepts and never
 * answers, in memory or on TCP (blackhole.ts; tcp-blackhole.ts is the same listener as a script a container runs);
 * `ChildNode` starts a chiral node (`spawn`) or any command (`spawnCommand`) as a child process, waits for its
 * ready line, and ends it gracefully or with SIGKILL (child.ts); `onExit` is the one exit hook through which every
 * one of them is ended when the harness itself is (exit-hook.ts).
 *
 * @example
 * ```ts
 * import { ChildNode, freePort, startBlackhole } from './index.ts'
 *
 * await using hole = await startBlackhole({ transport: 'tcp', name: 'dead' })   // hole.multiaddr never answers
 * const port = await freePort()
 * await using boot = await ChildNode.spawn({ config: { name: 'boot', role: 'bootstrap', transport: 'tcp', listen: [`/ip4/127.0.0.1/tcp/${port}`] } })
 * ```
 */
export { freePort, canBind, candidateRange } from './free-port.ts'
export { startBlackhole, type Blackhole, type BlackholeOptions } from './blackhole.ts'
export { holdTcp, TCP_BLACKHOLE_READY, type TcpHolder } from './tcp-blackhole.ts'
export { ChildNode, MAIN_ENTRY, type NodeReady, type SpawnNodeOptions, type SpawnCommandOptions } from './child.ts'
export { onExit } from './exit-hook.ts'
