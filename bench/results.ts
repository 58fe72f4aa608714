import type { measureConnectTimeout, measureMutualVisibility, measureToxiproxyOverhead } from './latency.ts'
import type { ScaleResult } from './scale.ts'
import type { ScaleProfile } from './profiles.ts'
import type { SuiteFigure } from './suite.ts'

/** bench/results/*.json: what bench/main.ts measured, read back by table.ts and render.ts. */
export interface BenchResults {
  schemaVersion: 2
  startedAt: string
  endedAt?: string
  seed: number
  quick: boolean
  argv: string[]
  machine: { platform: string, arch: string, cpus: number, cpuModel: string, memoryMiB: number, node: string, libp2p: string, kadDht: string }
  scale?: Array<ScaleResult | { n: number, profile: ScaleProfile, crashed: true, exit: string, stderrTail: string, command: string }>
  /** Keyed `<profile>/<n>`. */
  scaleCommands?: Record<string, string>
  /** Per profile: the largest N whose peers were all verified within 120 s, of the sizes run. */
  largestConvergedN?: Partial<Record<ScaleProfile, number | null>>
  latency?: {
    /** chiral-sim's default: the first self-query at once (dht.initialQuerySelfIntervalMs = 0). */
    mutualVisibility: Awaited<ReturnType<typeof measureMutualVisibility>>
    /** kad-dht's stock first self-query after 1 s, for comparison. */
    mutualVisibilityKadStock: Awaited<ReturnType<typeof measureMutualVisibility>>
    connectTimeout: Awaited<ReturnType<typeof measureConnectTimeout>>
    commands: Record<string, string>
  }
  toxiproxy?: Awaited<ReturnType<typeof measureToxiproxyOverhead>> | { error: string }
  toxiproxyCommand?: string
  suite?: SuiteFigure[]
  suiteCommand?: string
}
