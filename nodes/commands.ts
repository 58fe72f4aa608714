import { z } from 'zod'
import { connectionTimeoutMs, durationMs } from './config.ts'
import {
  Base64Schema, CidInputSchema, MultiaddrInputSchema, PeerIdInputSchema,
  BootstrapHealthSchema, ConnectResultSchema, DhtMetricsSchema, DhtTestResultSchema, DiscoveryStatusSchema,
  DownloadResultSchema, FileRecordSchema, MonitorStateSchema, NodeInfoSchema, NodeInspectionSchema, ReachabilitySchema
} from './schemas.ts'
import type { NodeEventListener } from './events.ts'
import { didYouMean } from './suggest.ts'

/**
 * The command set of a chiral-sim node: the one seam between the harness and the system under test.
 * In process, a node implements it directly; across processes and containers, the control channel serves the
 * same schemas over HTTP. Names follow the plan (`connectWithTimeout`, `checkBootstrapHealth`, …).
 */
const PeerIdString = PeerIdInputSchema
const CidString = CidInputSchema
const none = z.object({}).strict()
const RoutingTableSizeSchema = z.object({ size: z.number().int(), peers: z.number().int() })
const cmd = <Req extends z.ZodType, Res extends z.ZodType>(request: Req, response: Res, roles: ReadonlyArray<'bootstrap' | 'peer'> = ['peer']) =>
  ({ request, response, roles })

export const commands = {
  info: cmd(none, NodeInfoSchema, ['bootstrap', 'peer']),
  inspect: cmd(none, NodeInspectionSchema, ['bootstrap', 'peer']),
  /** Solution #1: connect with timeout, busy retry and failover across `bootstrapAddrs` (default: the node's list). */
  connectWithTimeout: cmd(z.object({
    bootstrapAddrs: z.array(MultiaddrInputSchema).min(1).optional(),
    timeoutMs: connectionTimeoutMs('timeoutMs').optional()
  }).strict(), ConnectResultSchema),
  /** Solution #2.2. */
  checkBootstrapHealth: cmd(z.object({ address: MultiaddrInputSchema.optional() }).strict(), BootstrapHealthSchema),
  startHealthMonitoring: cmd(z.object({ address: MultiaddrInputSchema.optional() }).strict(), MonitorStateSchema),
  stopHealthMonitoring: cmd(none, MonitorStateSchema),
  getHealth: cmd(none, MonitorStateSchema),
  /** `size`: every routing-table entry; `peers`: entries that are not bootstraps (the plan's "Routing table: N peers"). */
  getDhtRoutingTableSize: cmd(none, RoutingTableSizeSchema, ['bootstrap', 'peer']),
  refreshRoutingTable: cmd(none, RoutingTableSizeSchema, ['bootstrap', 'peer']),
  testPeerDiscovery: cmd(z.object({ testContent: z.string().default('discovery-test') }).strict(), DhtTestResultSchema),
  listDiscoveredPeerIds: cmd(none, z.object({ peerIds: z.array(z.string()) }), ['bootstrap', 'peer']),
  /** `fresh: true` opens a new connection instead of reusing one: it tests the network path as it is now. */
  verifyPeerReachable: cmd(z.object({ peerId: PeerIdString, fresh: z.boolean().default(false) }).strict(), ReachabilitySchema),
  /** A DHT lookup: "found by a DHT lookup" in the who-sees-whom matrix. */
  findPeer: cmd(z.object({
    peerId: PeerIdString,
    /** Ask only this peer, once (a FIND_NODE, no walk): what that peer's answer carries. */
    via: PeerIdString.optional()
  }).strict(), z.object({
    found: z.boolean(), addresses: z.array(z.string()), latencyMs: z.number(), error: z.string().optional(),
    /** With `via`: the peers its answer carried. */
    closerPeers: z.array(z.string()).optional()
  }), ['bootstrap', 'peer']),
  getProviderRecords: cmd(z.object({ cid: CidString }).strict(), z.object({ providers: z.array(z.string()) })),
  provide: cmd(z.object({ cid: CidString }).strict(), z.object({ ok: z.boolean(), error: z.string().optional() })),
  shareFile: cmd(z.object({ name: z.string().min(1), contentBase64: Base64Schema }).strict(), FileRecordSchema),
  downloadFile: cmd(z.object({ cid: CidString, provider: PeerIdString.optional() }).strict(), DownloadResultSchema),
  /** Solution #3: the six-step verification. */
  verifyPeerDiscovery: cmd(none, DiscoveryStatusSchema),
  /** Solution #3.10: poll every 2 s until each expected peer (or any new peer) is discovered and dialled. */
  waitForBidirectionalDiscovery: cmd(z.object({
    peerIds: z.array(PeerIdString).optional(),
    /** Real ms (never scaled: discovery is network work); default the node's bidirectionalDiscoveryTimeoutMs. */
    timeoutMs: durationMs(1).optional()
  }).strict(), z.object({
    success: z.boolean(),
    durationMs: z.number(),
    verified: z.array(z.object({ peerId: z.string(), afterMs: z.number(), latencyMs: z.number().optional() })),
    missing: z.array(z.string())
  })),
  getMetrics: cmd(none, DhtMetricsSchema, ['bootstrap', 'peer']),
  /** Stops the node gracefully; the process entry point exits afterwards. */
  shutdown: cmd(none, z.object({ ok: z.literal(true) }), ['bootstrap', 'peer'])
} as const

export type Commands = typeof commands
export type CommandName = keyof Commands
export type CommandRequest<C extends CommandName> = z.input<Commands[C]['request']>
export type ParsedRequest<C extends CommandName> = z.output<Commands[C]['request']>
export type CommandResponse<C extends CommandName> = z.output<Commands[C]['response']>
export const commandNames = Object.keys(commands) as CommandName[]

export function isCommandName (name: string): name is CommandName {
  return Object.hasOwn(commands, name)
}

export const CommandErrorCodeSchema = z.enum(['bad-request', 'unknown-command', 'not-supported', 'failed', 'aborted', 'unavailable', 'unauthorized', 'forbidden'])
export type CommandErrorCode = z.infer<typeof CommandErrorCodeSchema>
export const CommandErrorBodySchema = z.object({
  error: z.object({ code: CommandErrorCodeSchema, message: z.string(), field: z.string().optional() })
})

/** A command that could not be carried out; the control channel maps `code` to an HTTP status. */
export class CommandError extends Error {
  override readonly name = 'CommandError'
  readonly code: CommandErrorCode
  readonly field: string | undefined
  constructor (code: CommandErrorCode, message: string, field?: string) {
    super(message)
    this.code = code
    this.field = field
  }
}

/** Parses a request, turning a zod failure into a CommandError that names the field. */
export function parseRequest<C extends CommandName> (command: C, request: unknown): ParsedRequest<C> {
  const result = commands[command].request.safeParse(request ?? {})
  if (!result.success) {
    const issue = result.error.issues[0]
    // An unknown key is reported at the object that holds it: name the key itself.
    const path = issue?.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0] ?? ''] : issue?.path ?? []
    const field = path.join('.')
    const request = commands[command].request
    const hint = issue?.code === 'unrecognized_keys' && issue.path.length === 0 && request instanceof z.ZodObject
      ? didYouMean(issue.keys[0] ?? '', Object.keys(request.shape))
      : ''
    throw new CommandError('bad-request', `${command}: ${field === '' ? 'request' : `field "${field}"`}: ${issue?.message ?? 'invalid'}${hint}`, field)
  }
  return result.data as ParsedRequest<C>
}

export interface CallOptions { signal?: AbortSignal }

/**
 * A node as the harness sees it, wherever it runs. In process it is the node itself; across processes it is the
 * control-channel client. Nothing in sim/ may depend on more than this.
 */
export interface NodeHandle {
  readonly name: string
  readonly role: 'bootstrap' | 'peer'
  call<C extends CommandName>(command: C, request: CommandRequest<C>, options?: CallOptions): Promise<CommandResponse<C>>
  /** Replays events from `from` (default 0) and then delivers new ones until unsubscribed. */
  subscribe(listener: NodeEventListener, from?: number): () => void
}

/** What a node implementation provides: one handler per command it supports. */
export type CommandHandlers = {
  [C in CommandName]?: (request: ParsedRequest<C>, options: CallOptions) => Promise<CommandResponse<C>>
}

/** Validates, dispatches and answers a command against a set of handlers: shared by in-process and HTTP callers. */
export async function dispatch<C extends CommandName> (
  role: 'bootstrap' | 'peer', handlers: CommandHandlers, command: C, request: unknown, options: CallOptions = {}
): Promise<CommandResponse<C>> {
  if (!isCommandName(command)) {
    throw new CommandError('unknown-command', `unknown command "${String(command)}"; known commands: ${commandNames.join(', ')}`)
  }
  const def = commands[command]
  const handler = handlers[command] as ((r: ParsedRequest<C>, o: CallOptions) => Promise<CommandResponse<C>>) | undefined
  if (!def.roles.includes(role) || handler == null) {
    throw new CommandError('not-supported', `command "${command}" is not available on a ${role} node`)
  }
  const parsed = parseRequest(command, request)
  return await handler(parsed, options)
}
