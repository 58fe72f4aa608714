import { NodeConfigSchema } from '../../../nodes/config.ts'
import { serveControl, type ControlServer } from '../../../nodes/control/server.ts'
import { LocalNode } from '../../../nodes/node.ts'
import { describeError, withDeadline } from '../../../nodes/util.ts'
import type { FromShard, ToShard } from './protocol.ts'

/**
 * A shard: one Node process that runs many nodes of a run, each a LocalNode on loopback TCP behind its own
 * authenticated control channel (nodes/control/), exactly as a process-mode node is reached. Started by the shard
 * backend (shard.ts) with an IPC channel, which carries only "start this node" and "stop that one": the commands go
 * over each node's control channel. The IPC channel closes when the harness dies, however it dies: the shard then
 * stops its nodes and exits, so it cannot outlive the harness.
 */

const STOP_DEADLINE_MS = 10_000

interface Hosted { node: LocalNode, control: ControlServer, ended: Promise<void> | undefined }

const hosted = new Map<string, Hosted>()

function send (message: FromShard): void {
  process.send?.(message)
}

async function end (name: string): Promise<void> {
  const h = hosted.get(name)
  if (h == null) return
  h.ended ??= (async () => {
    try {
      // The node first, so its goodbye reaches peers; its control channel last, so callers see it stopping.
      await withDeadline(h.node.stop(), STOP_DEADLINE_MS, `did not stop within ${STOP_DEADLINE_MS} ms`)
    } finally {
      await h.control.close()
      hosted.delete(name)
    }
  })()
  await h.ended
}

async function start (message: Extract<ToShard, { type: 'start' }>): Promise<void> {
  const config = NodeConfigSchema.parse({ ...message.config, transport: 'tcp' })
  if (hosted.has(config.name)) throw new Error(`node "${config.name}" already runs in this shard`)
  const node = await LocalNode.start(config)
  let control: ControlServer
  try {
    control = await serveControl({ name: node.name, role: node.role, handlers: node.handlers, log: node.log }, { token: message.token, host: '127.0.0.1', port: 0 })
  } catch (err) {
    await node.stop().catch(() => {})
    throw err
  }
  const h: Hosted = { node, control, ended: undefined }
  hosted.set(config.name, h)
  // The `shutdown` command stops the node itself (after answering): its control channel follows, as its process
  // would in process mode.
  node.log.subscribe(ev => { if (ev.type === 'node:stopped' && hosted.get(config.name) === h) void end(config.name).catch(() => {}) })
  send({ type: 'started', id: message.id, peerId: node.peerId.toString(), multiaddrs: node.multiaddrs(), control: control.url })
}

let exiting = false
function exit (): void {
  if (exiting) return
  exiting = true
  setTimeout(() => process.exit(1), STOP_DEADLINE_MS).unref()
  void Promise.allSettled([...hosted.keys()].map(end)).then(() => process.exit(0))
}

process.on('message', (message: ToShard) => {
  if (message.type === 'start') {
    start(message).catch((err: unknown) => { send({ type: 'failed', id: message.id, error: describeError(err) }) })
  } else {
    end(message.name).then(
      () => { send({ type: 'stopped', id: message.id }) },
      (err: unknown) => { send({ type: 'failed', id: message.id, error: describeError(err) }) }
    )
  }
})
// The harness is gone (or closed the channel at its teardown).
process.on('disconnect', exit)
// A terminal's Ctrl-C reaches the harness only (the shard has its own process group); a SIGTERM is the backend's force.
process.on('SIGTERM', exit)
send({ type: 'ready' })
