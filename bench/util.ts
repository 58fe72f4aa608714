/** Small helpers shared by the bench modules: statistics, deadlines, a resource sampler, a bounded pool. */

export function quantile (values: number[], q: number): number | null {
  if (values.length === 0) return null
  const s = [...values].sort((a, b) => a - b)
  const pos = (s.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return round(s[lo]! + (s[hi]! - s[lo]!) * (pos - lo))
}

export function round (x: number, digits = 3): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

export interface Summary { n: number, min: number | null, p50: number | null, p90: number | null, p99: number | null, max: number | null, mean: number | null }

export function summarize (values: number[]): Summary {
  const mean = values.length === 0 ? null : round(values.reduce((a, b) => a + b, 0) / values.length)
  return {
    n: values.length,
    min: quantile(values, 0),
    p50: quantile(values, 0.5),
    p90: quantile(values, 0.9),
    p99: quantile(values, 0.99),
    max: quantile(values, 1),
    mean
  }
}

/** Runs `fn` over `items` with at most `limit` at once; results keep the input order. */
export async function pool<T, R> (items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  return out
}

/** Polls `check` every `intervalMs` until it returns true or `ms` passes; returns whether it succeeded. */
export async function waitUntil (check: () => boolean | Promise<boolean>, ms: number, intervalMs = 100, signal?: AbortSignal): Promise<boolean> {
  const end = Date.now() + ms
  while (true) {
    if (await check()) return true
    if (Date.now() >= end || signal?.aborted === true) return false
    await new Promise(resolve => setTimeout(resolve, Math.min(intervalMs, Math.max(1, end - Date.now()))))
  }
}

/** Samples RSS and heap every `intervalMs`; peak RSS also comes from the kernel's maxRSS (resourceUsage). */
export class ResourceSampler {
  #timer: ReturnType<typeof setInterval> | undefined
  #cpu0 = process.cpuUsage()
  #t0 = performance.now()
  peakRss = 0
  peakHeap = 0
  samples = 0

  start (intervalMs = 200): this {
    this.#cpu0 = process.cpuUsage()
    this.#t0 = performance.now()
    const sample = (): void => {
      const m = process.memoryUsage()
      this.samples++
      if (m.rss > this.peakRss) this.peakRss = m.rss
      if (m.heapUsed > this.peakHeap) this.peakHeap = m.heapUsed
    }
    sample()
    this.#timer = setInterval(sample, intervalMs)
    this.#timer.unref()
    return this
  }

  stop (): { wallMs: number, cpuUserMs: number, cpuSystemMs: number, cpuMs: number, peakRssMiB: number, maxRssMiB: number, peakHeapMiB: number, samples: number } {
    clearInterval(this.#timer)
    const cpu = process.cpuUsage(this.#cpu0)
    const ru = process.resourceUsage()
    const mib = (b: number): number => round(b / 1048576, 1)
    return {
      wallMs: Math.round(performance.now() - this.#t0),
      cpuUserMs: Math.round(cpu.user / 1000),
      cpuSystemMs: Math.round(cpu.system / 1000),
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      peakRssMiB: mib(this.peakRss),
      // resourceUsage().maxRSS is in KiB and covers the whole process life, start-up included.
      maxRssMiB: round(ru.maxRSS / 1024, 1),
      peakHeapMiB: mib(this.peakHeap),
      samples: this.samples
    }
  }
}
