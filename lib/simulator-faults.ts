// The simulator's faults: one-shot scripts for the next matching request,
// and random faults drawn at fixed rates from a seeded generator, so that
// "5 % of requests fail" is the same 5 % on every run.

// A one-shot answer for the next matching request. What it does, first
// applicable wins: `stall`; `drop: 'before'`; an answer of its own when it
// sets `status`, `code` or `body` (status defaults from the code, else 500;
// the code defaults from the status; such answers never land an entry);
// otherwise the request is processed normally, then dropped if
// `drop: 'after'`. `delay` is added to the simulator's latency either way.
// `retryAfter` goes in the body only; use `headers` for a Retry-After header
// so tests can exercise each source on its own.
/** A one-shot answer for the next matching request, queued by `Simulator.script`. */
export interface ScriptedFault {
  /** HTTP status of the answer; default from `code`, else 500. */
  status?: number
  /** Error code of the answer's envelope; default from `status`. */
  code?: string
  /** `error.message` of the answer. Default 'Simulated <code>'. */
  message?: string
  /** `error.hint` of the answer. */
  hint?: string
  /** `error.warning` of the answer. */
  warning?: string
  /** `error.retryAfter` (seconds) in the body; for a Retry-After header use `headers`. */
  retryAfter?: number
  /** Extra response headers, e.g. `{ 'Retry-After': '2' }`. */
  headers?: Record<string, string>
  /** The raw response body instead of the envelope, e.g. a proxy's HTML page. */
  body?: string
  /**
   * Cut the connection before the request is processed, or after it (the entry lands, the answer is lost),
   * or `'body'`: the entry lands, the status and headers are sent, then part of the body and a reset.
   */
  drop?: 'before' | 'after' | 'body'
  /** Never answer this request. */
  stall?: boolean
  /** ms added to the latency of this answer. */
  delay?: number
  /** Only a request to this path matches. Default: either workflow endpoint. */
  path?: string
  /** Only a request for this event token matches. Default: any. */
  token?: string
}

/** Rates of random faults, 0 to 1 each. */
export interface FaultRates {
  status502Rate?: number
  dropBeforeRate?: number
  dropAfterRate?: number
  seed?: number
}

export type RandomFault = 'bad-gateway' | 'drop-before' | 'drop-after' | undefined

// mulberry32: tiny, fast and good enough to make "5% of requests fail"
// reproducible from a seed, which Math.random() cannot be.
function prng (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = Math.imul(state ^ (state >>> 15), state | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 0x100000000
  }
}

/** Scripted and random faults of one simulator. */
export class Faults {
  private readonly scripts: ScriptedFault[] = []
  private readonly rates: { badGateway: number, dropBefore: number, dropAfter: number } | undefined
  private readonly seed: number
  private random: () => number

  constructor (rates: FaultRates | undefined, private readonly workflowPaths: ReadonlySet<string>) {
    this.rates = rates === undefined
      ? undefined
      : { badGateway: rates.status502Rate ?? 0, dropBefore: rates.dropBeforeRate ?? 0, dropAfter: rates.dropAfterRate ?? 0 }
    this.seed = rates?.seed ?? 1
    this.random = prng(this.seed)
  }

  /** Queues one-shot scripts, served in order. */
  add (scripts: ScriptedFault[]): void {
    this.scripts.push(...scripts)
  }

  /** Takes the first script that matches a request to `path` for `token`. */
  take (path: string, token: string | undefined): ScriptedFault | undefined {
    const index = this.scripts.findIndex(fault =>
      (fault.path === undefined ? this.workflowPaths.has(path) : fault.path === path) &&
      (fault.token === undefined || fault.token === token))
    return index === -1 ? undefined : this.scripts.splice(index, 1)[0]
  }

  // One draw per eligible request keeps the sequence reproducible: the n-th
  // eligible request always gets the same fate for a given seed.
  /** The random fault of the next eligible request, if any. */
  draw (): RandomFault {
    const rates = this.rates
    if (rates === undefined) return undefined
    const r = this.random()
    if (r < rates.badGateway) return 'bad-gateway'
    if (r < rates.badGateway + rates.dropBefore) return 'drop-before'
    if (r < rates.badGateway + rates.dropBefore + rates.dropAfter) return 'drop-after'
    return undefined
  }

  // The generator restarts so that a reset run sees the same fault sequence
  // as a fresh simulator.
  /** Forgets every script and restarts the random sequence. */
  reset (): void {
    this.scripts.length = 0
    this.random = prng(this.seed)
  }
}
