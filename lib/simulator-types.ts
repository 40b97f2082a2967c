// The public types of the Vibe API simulator (lib/simulator.ts re-exports them):
// its options, what it records, and the faults a test can script.

/** Options of {@link startSimulator}. Every one is optional. */
export interface SimulatorOptions {
  /** Address to listen on; loopback only is the point. Default '127.0.0.1' ('::1' works too). */
  host?: string
  /** Port to listen on. Default 0: a free port, see {@link Simulator.url}. */
  port?: number
  /** Personal keys (`X-Api-Key`) it accepts. Default ['vibe_api_test_key']. */
  apiKeys?: string[]
  /** App keys it accepts, each needing `Authorization: Bearer <session>`. Default ['vibe_app_test_key']. */
  appKeys?: string[]
  /** User sessions accepted with an app key. Default ['session_test_token']. */
  sessionTokens?: string[]
  /** User sessions answered with 401 TOKEN_EXPIRED. Default none. */
  expiredSessionTokens?: string[]
  /** A token bucket per key: `burst` requests at once, refilled at `rps`; over it, 429 RATE_LIMITED with Retry-After. Default: no limit. */
  rateLimit?: { rps: number, burst: number }
  /** ms added before every answer. Default 0. */
  latency?: number
  /**
   * Random faults of well-formed calls, reproducible by `seed` (default 1): `status502Rate` answers
   * 502 BITRIX_UNAVAILABLE, `dropBeforeRate` cuts the connection before the write, `dropAfterRate`
   * after it (the entry lands, the answer is lost). Rates from 0 to 1. Default: none.
   */
  faults?: { status502Rate?: number, dropBeforeRate?: number, dropAfterRate?: number, seed?: number }
  /** The clock of the rate limit and of `requests[].at`, e.g. a fake timer's. Default Date.now. */
  now?: () => number
  /**
   * Log rows kept per workflow: like Bitrix24 cloud, each write erases the
   * oldest rows past this many (see {@link Simulator.erased}). Default 50;
   * 0 keeps every row.
   */
  keepRows?: number
  /**
   * Requests kept in {@link Simulator.requests}: past this many the oldest
   * are forgotten, down to half of it. Default: all (a test counts them). The `simulate` command, which
   * may run for days, keeps a bounded number.
   */
  maxRecorded?: number
  /** Called for every log entry, completion and ignored call as it lands (the `simulate` command shows them). */
  onLanded?: (landed: Landed) => void
}

/** What {@link SimulatorOptions.onLanded} is told. */
export interface Landed {
  /** `entry`: a log row; `completion`: `/v1/workflows/event`; `ignored`: a log call after the completion. */
  kind: 'entry' | 'completion' | 'ignored'
  eventToken: string
  /** The row's text (a completion's `logMessage`, possibly ''). */
  message: string
  /** A completion's return values. */
  returnValues?: Record<string, unknown>
}

// A one-shot answer for the next matching request. What it does, first
// applicable wins: `stall`; `drop: 'before'`; an answer of its own when it
// sets `status`, `code` or `body` (status defaults from the code, else 500;
// the code defaults from the status; such answers never land an entry);
// otherwise the request is processed normally, then dropped if
// `drop: 'after'`. `delay` is added to the simulator's latency either way.
// `retryAfter` goes in the body only; use `headers` for a Retry-After header
// so tests can exercise each source on its own.
/** A one-shot answer for the next matching request, queued by {@link Simulator.script}. */
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

/** One request as the simulator saw it, in {@link Simulator.requests}. */
export interface RecordedRequest {
  method: string
  /** Without the query. */
  path: string
  /** As received, names in lower case: the key is in `x-api-key`. */
  headers: Record<string, string | string[] | undefined>
  /** The parsed JSON body, or undefined. */
  body: unknown
  /** Status answered; 0 for a dropped or stalled request. */
  status: number
  /** Error code answered, or DROPPED_BEFORE, DROPPED_AFTER, STALLED; CUT_BODY for a success whose body was cut; undefined for a success. */
  code?: string
  /** When it arrived, by the `now` clock. */
  at: number
}

/** A completion (`POST /v1/workflows/event`) as received. */
export interface SimulatorEvent {
  eventToken: string
  returnValues: Record<string, unknown>
  logMessage?: string
}

/** Counters of {@link Simulator.stats}. */
export interface SimulatorStats {
  /** Requests received. */
  requests: number
  /** Requests per answer code ('OK' for successes, plus DROPPED_BEFORE, DROPPED_AFTER, STALLED, CUT_BODY). */
  byCode: Record<string, number>
  /** Most requests in flight at once. */
  maxConcurrent: number
  /** Log rows written, in all workflows (a completion with a message writes one). */
  rows: number
  /** Log rows erased to keep each workflow to `keepRows`. */
  rowsErased: number
}
