import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['{nodes,scenarios,sim,reports,cli,bench,test}/**/*.test.ts'],
    // Real libp2p nodes and real sockets: tests run in forked workers, at most two at a time on a 2-core machine.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // A leaked timer or socket keeps a worker alive; fail instead of hanging CI.
    teardownTimeout: 10_000
  }
})
