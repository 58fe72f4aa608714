import { z } from 'zod'
import { CommandErrorBodySchema, commands, commandNames } from './commands.ts'
import { NodeEventSchema } from './events.ts'
import { httpStatusOf } from './control/server.ts'

/**
 * The control-channel contract as JSON Schema, generated from the zod schemas the harness itself checks with, so a
 * node in another language (a rust-libp2p or go-libp2p peer) implements it without guessing. Committed as
 * nodes/contract.schema.json; `node nodes/contract.ts > nodes/contract.schema.json` regenerates it, and a test
 * fails when it is out of date.
 */

const toSchema = (schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> => {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>
  return rest
}

export function contractJsonSchema (): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://chiral-sim.dev/contract.schema.json',
    title: 'chiral-sim node control channel',
    description: [
      'HTTP/1.1 on 127.0.0.1 (or the run\'s private network). The harness that starts a node writes a random token',
      '(32 bytes, hex) to a file with mode 0600 and passes its path as --control-token-file PATH (or env',
      'CHIRAL_CONTROL_TOKEN_FILE). Every request carries "Authorization: Bearer <token>" (else error code',
      '"unauthorized"); an Origin header, or a Host other than the bound address or localhost, is refused',
      '("forbidden"); request bodies are application/json (else 415).',
      'POST /commands/{name}: body = the command\'s request (validated as "request"), 200 with its "response", or',
      '"error" with the HTTP status of its code in "httpStatus" ("field" names the bad field of a bad-request; a node',
      'that does not implement a command answers "not-supported", and the runner reports which check it could not',
      'make).',
      'GET /events?from=N: NDJSON, the node\'s events from sequence number N, then live; "{}" lines are heartbeats.',
      'GET /healthz: {"ok": true, "name", "role"}. A node started by the harness prints its ready line on stdout and',
      'exits when its stdin closes.'
    ].join(' '),
    commands: Object.fromEntries(commandNames.map(name => [name, {
      roles: commands[name].roles,
      request: toSchema(commands[name].request, 'input'),
      response: toSchema(commands[name].response, 'output')
    }])),
    error: toSchema(CommandErrorBodySchema, 'output'),
    httpStatus: httpStatusOf,
    event: toSchema(NodeEventSchema, 'output')
  }
}

if (import.meta.main) {
  process.stdout.write(`${JSON.stringify(contractJsonSchema(), null, 2)}\n`)
}
