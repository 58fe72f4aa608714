import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { commandNames } from './commands.ts'
import { contractJsonSchema } from './contract.ts'

const FILE = new URL('./contract.schema.json', import.meta.url)

describe('the control-channel contract (nodes/contract.schema.json)', () => {
  it('is up to date with the zod schemas (regenerate: node nodes/contract.ts > nodes/contract.schema.json)', () => {
    expect(JSON.parse(readFileSync(FILE, 'utf8'))).toEqual(JSON.parse(JSON.stringify(contractJsonSchema())))
  })

  it('describes every command with its request and response', () => {
    const contract = contractJsonSchema() as { commands: Record<string, { request: unknown, response: unknown, roles: string[] }>, httpStatus: Record<string, number> }
    expect(Object.keys(contract.commands).sort()).toEqual([...commandNames].sort())
    expect(contract.httpStatus['not-supported']).toBeGreaterThanOrEqual(400)
    expect(contract.httpStatus.unauthorized).toBe(401)
    // The bounds the harness enforces travel with the contract, so another implementation enforces the same.
    expect(contract.commands.connectWithTimeout!.request).toMatchObject({ properties: { timeoutMs: { minimum: 5000, maximum: 30000 } } })
  })
})
