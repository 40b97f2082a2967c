// A loopback stand-in for the Vibe API workflow endpoints. It is a real HTTP
// server (not a mocked dispatcher) so that the transport's agent, keep-alive,
// timeouts and socket errors are exercised exactly as they would be against
// vibecode.bitrix24.tech. Behaviour follows shared/spec/vibe-api.md; where the
// docs are vague the choice made here is explained next to the code.

import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { isIPv6 } from 'node:net'

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

const ACTIVITY_LOG_PATH = '/v1/workflows/activity-log'
const EVENT_PATH = '/v1/workflows/event'
const WORKFLOW_PATHS = new Set([ACTIVITY_LOG_PATH, EVENT_PATH])

// The API documents no size limit; 1 MiB is far above the 64 KB column a log
// entry lands in, so only a runaway client hits it.
const MAX_BODY = 1024 * 1024

const REPEAT_WARNING = 'The same error repeats on this key: the client most likely has a bug'
const LOG_PARAMS_MESSAGE = 'Required: eventToken (string), logMessage (string)'
const EVENT_PARAMS_MESSAGE = 'Required: eventToken (string); optional: returnValues (object), logMessage (string)'

// Lets a script name only a code (or only a status) and still get the pair
// the real API would send.
const STATUS_OF_CODE: Record<string, number> = {
  MISSING_PARAMS: 400,
  MISSING_API_KEY: 401,
  INVALID_API_KEY: 401,
  INVALID_APP_KEY: 401,
  TOKEN_MISSING: 401,
  TOKEN_EXPIRED: 401,
  SCOPE_DENIED: 403,
  BITRIX_ACCESS_DENIED: 403,
  OAUTH_REQUIRED: 403,
  WRITE_BLOCKED_READONLY_KEY: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  PAYLOAD_TOO_LARGE: 413,
  BITRIX_ERROR: 422,
  RATE_LIMITED: 429,
  INTERNAL_ERROR: 500,
  BITRIX_UNAVAILABLE: 502,
  QUEUE_TIMEOUT: 504
}
const CODE_OF_STATUS: Record<number, string> = {
  400: 'MISSING_PARAMS',
  401: 'INVALID_API_KEY',
  403: 'BITRIX_ACCESS_DENIED',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  413: 'PAYLOAD_TOO_LARGE',
  422: 'BITRIX_ERROR',
  429: 'RATE_LIMITED',
  500: 'INTERNAL_ERROR',
  502: 'BITRIX_UNAVAILABLE',
  504: 'QUEUE_TIMEOUT'
}

type Outcome =
  | { kind: 'answer', status: number, code?: string, payload: string, headers: Record<string, string> }
  | { kind: 'drop', code: 'DROPPED_BEFORE' | 'DROPPED_AFTER' }
  | { kind: 'cut', status: number, code?: string, payload: string }
  | { kind: 'stall' }

type RandomFault = 'bad-gateway' | 'drop-before' | 'drop-after' | undefined

interface Bucket { tokens: number, last: number }

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

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function parseBody (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    // Kept raw so tests can see exactly what a broken client sent.
    return text
  }
}

function headerText (req: http.IncomingMessage, name: string): string {
  const value = req.headers[name]
  return typeof value === 'string' ? value.trim() : ''
}

function answer (status: number, code: string | undefined, body: unknown, headers: Record<string, string> = {}): Outcome {
  return { kind: 'answer', status, code, payload: JSON.stringify(body), headers }
}

const SUCCESS: Outcome = answer(200, undefined, { success: true, data: null })

/**
 * A running simulator of the Vibe API workflow endpoints, on loopback. Get one
 * from {@link startSimulator}; point the transport's `baseUrl` at {@link url}.
 */
export class Simulator {
  /** Its origin, e.g. 'http://127.0.0.1:41234': the `baseUrl` for the transport. */
  readonly url: string
  /** Every request received, in order of arrival. */
  readonly requests: RecordedRequest[] = []

  private readonly server: http.Server
  private readonly now: () => number
  private readonly apiKeys: Set<string>
  private readonly appKeys: Set<string>
  private readonly sessions: Set<string>
  private readonly expiredSessions: Set<string>
  private readonly latency: number
  private readonly faultRates: { badGateway: number, dropBefore: number, dropAfter: number } | undefined
  private readonly seed: number
  private random: () => number
  private rateLimit: { rps: number, burst: number } | null
  private readonly onLanded: ((landed: Landed) => void) | undefined

  private readonly landed = new Map<string, string[]>()
  private readonly keepRows: number
  private readonly maxRecorded: number
  private readonly erasedRows = new Map<string, number>()
  private rowsWritten = 0
  private rowsErased = 0
  private readonly ignoredEntries = new Map<string, string[]>()
  private readonly events = new Map<string, SimulatorEvent>()
  // Killed and finished tokens behave the same on the wire: the workflow is
  // gone, so Bitrix24 refuses every call carrying the token.
  private readonly gone = new Set<string>()
  private readonly scripts: ScriptedFault[] = []
  private readonly buckets = new Map<string, Bucket>()
  private readonly repeats = new Map<string, { code: string, count: number }>()
  private readonly held = new Set<http.ServerResponse>()
  private readonly perToken = new Map<string, { inFlight: number }>()
  private stalled = false
  private requestCount = 0
  private byCode: Record<string, number> = {}
  private inFlight = 0
  private maxInFlight = 0
  private maxInFlightPerToken = 0

  private constructor (server: http.Server, url: string, opts: SimulatorOptions) {
    this.server = server
    this.url = url
    this.now = opts.now ?? Date.now
    this.apiKeys = new Set(opts.apiKeys ?? ['vibe_api_test_key'])
    this.appKeys = new Set(opts.appKeys ?? ['vibe_app_test_key'])
    this.sessions = new Set(opts.sessionTokens ?? ['session_test_token'])
    this.expiredSessions = new Set(opts.expiredSessionTokens ?? [])
    this.latency = opts.latency ?? 0
    this.keepRows = opts.keepRows ?? 50
    this.maxRecorded = opts.maxRecorded ?? Infinity
    this.rateLimit = opts.rateLimit ?? null
    this.onLanded = opts.onLanded
    const faults = opts.faults
    this.faultRates = faults === undefined
      ? undefined
      : { badGateway: faults.status502Rate ?? 0, dropBefore: faults.dropBeforeRate ?? 0, dropAfter: faults.dropAfterRate ?? 0 }
    this.seed = faults?.seed ?? 1
    this.random = prng(this.seed)
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => this.onRequest(req, res))
  }

  /** Starts listening; the same as {@link startSimulator}. */
  static async start (opts: SimulatorOptions = {}): Promise<Simulator> {
    const host = opts.host ?? '127.0.0.1'
    const server = http.createServer()
    // The transport keeps connections alive; the server must not drop an idle
    // socket sooner than a client would reasonably reuse it.
    server.keepAliveTimeout = 5000
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(opts.port ?? 0, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const { port } = server.address() as AddressInfo
    const hostInUrl = isIPv6(host) ? `[${host}]` : host
    return new Simulator(server, `http://${hostInUrl}:${port}`, opts)
  }

  /** Rows of a workflow erased so far because only the newest `keepRows` are kept. */
  erased (eventToken: string): number {
    return this.erasedRows.get(eventToken) ?? 0
  }

  /** The log rows of a workflow, oldest first: what Bitrix24 would show, its newest `keepRows` (a copy). */
  entries (eventToken: string): string[] {
    return [...(this.landed.get(eventToken) ?? [])]
  }

  /** The log rows of every workflow, by event token (a copy). */
  allEntries (): Map<string, string[]> {
    return new Map([...this.landed].map(([token, list]) => [token, [...list]]))
  }

  /** Log calls that answered success but were thrown away, having come after the completion (as Bitrix24 does). */
  ignored (eventToken: string): string[] {
    return [...(this.ignoredEntries.get(eventToken) ?? [])]
  }

  /** The completion of a workflow's activity, once it came. */
  event (eventToken: string): SimulatorEvent | undefined {
    return this.events.get(eventToken)
  }

  /** From now on every call with this token answers 403 BITRIX_ACCESS_DENIED (an invalid or expired token). */
  killToken (eventToken: string): void {
    this.gone.add(eventToken)
  }

  /** The workflow ended: on the wire the same as {@link killToken}. */
  finishWorkflow (eventToken: string): void {
    this.gone.add(eventToken)
  }

  /** Queues one-shot answers: each serves the next request it matches, in order. */
  script (...faults: ScriptedFault[]): void {
    this.scripts.push(...faults)
  }

  /** While on, no request is answered: a server that hangs. */
  stall (on: boolean): void {
    this.stalled = on
  }

  /** Changes the per-key rate limit (null: none); buckets start full. */
  setRateLimit (limit: { rps: number, burst: number } | null): void {
    this.rateLimit = limit
    this.buckets.clear()
  }

  /** Counters since the start or the last {@link reset}. */
  stats (): SimulatorStats {
    return { requests: this.requestCount, byCode: { ...this.byCode }, maxConcurrent: this.maxInFlight, rows: this.rowsWritten, rowsErased: this.rowsErased }
  }

  /** Most requests in flight at once for any one event token. */
  maxConcurrentPerToken (): number {
    return this.maxInFlightPerToken
  }

  /**
   * Forgets every request, entry, event, dead token, script and stall; keys,
   * latency, fault rates and rate limit stay.
   */
  // The fault PRNG restarts so a reset run sees the same fault sequence as a
  // fresh simulator.
  reset (): void {
    this.requests.length = 0
    this.landed.clear()
    this.erasedRows.clear()
    this.rowsWritten = 0
    this.rowsErased = 0
    this.ignoredEntries.clear()
    this.events.clear()
    this.gone.clear()
    this.scripts.length = 0
    this.buckets.clear()
    this.repeats.clear()
    this.perToken.clear()
    this.stalled = false
    this.requestCount = 0
    this.byCode = {}
    this.maxInFlight = this.inFlight
    this.maxInFlightPerToken = 0
    this.random = prng(this.seed)
  }

  /** Stops listening and cuts every connection, stalled ones included; safe to call twice. */
  close (): Promise<void> {
    return new Promise(resolve => {
      for (const res of this.held) res.destroy()
      // The callback also fires (with an error) when already closed, which
      // makes close() safe to call twice.
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
  }

  private onRequest (req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requestCount++
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    // 'close' fires once whether the answer was sent or the socket died.
    res.once('close', () => { this.inFlight-- })
    // The whole body is consumed even past the cap so that the connection
    // stays usable for keep-alive after a 413.
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= MAX_BODY) chunks.push(chunk)
    })
    req.on('end', () => {
      const tooLarge = size > MAX_BODY
      this.handle(req, res, tooLarge ? undefined : parseBody(Buffer.concat(chunks).toString('utf8')), tooLarge)
    })
  }

  private handle (req: http.IncomingMessage, res: http.ServerResponse, body: unknown, tooLarge: boolean): void {
    const path = String(req.url).split('?')[0]
    const token = isPlainObject(body) && typeof body.eventToken === 'string' ? body.eventToken : undefined
    const record: RecordedRequest = {
      method: String(req.method),
      path,
      headers: { ...req.headers },
      body,
      status: 0,
      at: this.now()
    }
    this.requests.push(record)
    // Half the cap at a time: one splice per many requests, not one per request.
    if (this.requests.length > this.maxRecorded) this.requests.splice(0, this.requests.length - Math.floor(this.maxRecorded / 2))
    if (token !== undefined) this.trackToken(token, res)

    let outcome: Outcome
    let wait = this.latency
    const fault = this.stalled ? undefined : this.takeFault(path, token)
    if (this.stalled || fault?.stall === true) {
      outcome = { kind: 'stall' }
    } else if (fault?.drop === 'before') {
      outcome = { kind: 'drop', code: 'DROPPED_BEFORE' }
    } else if (fault !== undefined && (fault.status !== undefined || fault.code !== undefined || fault.body !== undefined)) {
      outcome = this.scriptedAnswer(fault)
    } else {
      outcome = this.process(req, path, body, tooLarge)
      // The request has been fully handled (entry landed or not); only the
      // answer is lost, which is what makes a retry write a duplicate.
      if (fault?.drop === 'after') outcome = { kind: 'drop', code: 'DROPPED_AFTER' }
      else if (fault?.drop === 'body' && outcome.kind === 'answer') outcome = { kind: 'cut', status: outcome.status, code: outcome.code, payload: outcome.payload }
    }
    wait += fault?.delay ?? 0
    this.deliver(res, record, outcome, wait)
  }

  private trackToken (token: string, res: http.ServerResponse): void {
    let slot = this.perToken.get(token)
    if (slot === undefined) {
      slot = { inFlight: 0 }
      this.perToken.set(token, slot)
    }
    const counted = slot
    counted.inFlight++
    this.maxInFlightPerToken = Math.max(this.maxInFlightPerToken, counted.inFlight)
    res.once('close', () => { counted.inFlight-- })
  }

  private takeFault (path: string, token: string | undefined): ScriptedFault | undefined {
    const index = this.scripts.findIndex(fault =>
      (fault.path === undefined ? WORKFLOW_PATHS.has(path) : fault.path === path) &&
      (fault.token === undefined || fault.token === token))
    return index === -1 ? undefined : this.scripts.splice(index, 1)[0]
  }

  private scriptedAnswer (fault: ScriptedFault): Outcome {
    const status = fault.status ?? STATUS_OF_CODE[fault.code ?? ''] ?? 500
    const code = status >= 400 ? fault.code ?? CODE_OF_STATUS[status] ?? 'INTERNAL_ERROR' : undefined
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(fault.headers ?? {})) headers[name.toLowerCase()] = value
    if (fault.body !== undefined) return { kind: 'answer', status, code, payload: fault.body, headers }
    if (code === undefined) return answer(status, undefined, { success: true, data: null }, headers)
    return answer(status, code, {
      success: false,
      error: { code, message: fault.message ?? `Simulated ${code}`, hint: fault.hint, warning: fault.warning, retryAfter: fault.retryAfter }
    }, headers)
  }

  // The documented order of checks: routing, size, auth, rate limit, request
  // shape, Bitrix24's own checks, then the network faults and the write.
  private process (req: http.IncomingMessage, path: string, body: unknown, tooLarge: boolean): Outcome {
    const key = headerText(req, 'x-api-key')
    if (!WORKFLOW_PATHS.has(path)) return this.fail(key, 404, 'NOT_FOUND', `No route for ${path}`)
    if (req.method !== 'POST') {
      return this.fail(key, 405, 'METHOD_NOT_ALLOWED', `${path} accepts POST only`, undefined, { allow: 'POST' })
    }
    if (tooLarge) return this.fail(key, 413, 'PAYLOAD_TOO_LARGE', `Request body exceeds ${MAX_BODY} bytes`)

    if (key === '') return this.fail(key, 401, 'MISSING_API_KEY', 'X-Api-Key header not provided')
    if (this.appKeys.has(key)) {
      const bearer = /^Bearer\s+(\S+)$/i.exec(headerText(req, 'authorization'))
      if (bearer === null) {
        return this.fail(key, 401, 'INVALID_APP_KEY', 'An app key needs Authorization: Bearer <user session token>')
      }
      if (this.expiredSessions.has(bearer[1])) {
        return this.fail(key, 401, 'TOKEN_EXPIRED', 'The OAuth user session has expired', 'Reauthorize via /v1/oauth/authorize')
      }
      if (!this.sessions.has(bearer[1])) return this.fail(key, 401, 'INVALID_API_KEY', 'Invalid or expired session token')
    } else if (!this.apiKeys.has(key)) {
      return this.fail(key, 401, 'INVALID_API_KEY', 'Invalid or expired API key')
    }

    const retryAfter = this.consumeRate(key)
    if (retryAfter > 0) {
      return this.fail(key, 429, 'RATE_LIMITED', 'Request rate limit exceeded', 'Retry in 1-2 seconds', { 'retry-after': String(retryAfter) }, retryAfter)
    }

    const isLog = path === ACTIVITY_LOG_PATH
    const paramsMessage = isLog ? LOG_PARAMS_MESSAGE : EVENT_PARAMS_MESSAGE
    const contentType = headerText(req, 'content-type').split(';')[0].trim().toLowerCase()
    if (contentType !== 'application/json' || !isPlainObject(body)) return this.fail(key, 400, 'MISSING_PARAMS', paramsMessage)
    const { eventToken, logMessage, returnValues } = body
    if (typeof eventToken !== 'string' || eventToken === '') return this.fail(key, 400, 'MISSING_PARAMS', paramsMessage)
    if (isLog ? typeof logMessage !== 'string' : logMessage !== undefined && typeof logMessage !== 'string') {
      return this.fail(key, 400, 'MISSING_PARAMS', paramsMessage)
    }
    if (!isLog && returnValues !== undefined && !isPlainObject(returnValues)) {
      return this.fail(key, 400, 'MISSING_PARAMS', paramsMessage)
    }
    // Bitrix24 trims messages and refuses an empty one; on the event call the
    // message is optional, so an empty one there simply writes nothing.
    const message = typeof logMessage === 'string' ? logMessage.trim() : ''
    if (isLog && message === '') return this.fail(key, 422, 'BITRIX_ERROR', 'Bitrix24 rejected the call: empty log message')

    const completed = this.events.has(eventToken)
    if (this.gone.has(eventToken) || (completed && !isLog)) {
      return this.fail(key, 403, 'BITRIX_ACCESS_DENIED', 'Bitrix24 rejected the request: the token is invalid, expired or already used')
    }

    const random = this.randomFault()
    if (random === 'bad-gateway') return this.fail(key, 502, 'BITRIX_UNAVAILABLE', 'Bitrix24 is unavailable')
    if (random === 'drop-before') return { kind: 'drop', code: 'DROPPED_BEFORE' }

    if (completed) {
      // The workflow is past the activity but still running: Bitrix24
      // accepts the call and throws the entry away.
      append(this.ignoredEntries, eventToken, message)
      this.onLanded?.({ kind: 'ignored', eventToken, message })
    } else if (isLog) {
      this.writeRow(eventToken, message)
      this.onLanded?.({ kind: 'entry', eventToken, message })
    } else {
      const event: SimulatorEvent = { eventToken, returnValues: (returnValues ?? {}) as Record<string, unknown> }
      if (typeof logMessage === 'string') event.logMessage = message
      this.events.set(eventToken, event)
      // The event's own message is a row of the workflow's log like any other.
      if (message !== '') this.writeRow(eventToken, message)
      this.onLanded?.({ kind: 'completion', eventToken, message, returnValues: event.returnValues })
    }
    this.repeats.delete(key)
    return random === 'drop-after' ? { kind: 'drop', code: 'DROPPED_AFTER' } : SUCCESS
  }

  // Bitrix24 cloud deletes a workflow's oldest tracking rows past 50 after every write.
  private writeRow (token: string, message: string): void {
    append(this.landed, token, message)
    this.rowsWritten++
    const list = this.landed.get(token) as string[]
    if (this.keepRows > 0 && list.length > this.keepRows) {
      const over = list.length - this.keepRows
      list.splice(0, over)
      this.rowsErased += over
      this.erasedRows.set(token, this.erased(token) + over)
    }
  }

  // Counts consecutive identical errors per key: a client that keeps
  // sending the same bad call gets the documented warning from the third on.
  private fail (key: string, status: number, code: string, message: string, hint?: string, headers?: Record<string, string>, retryAfter?: number): Outcome {
    const last = this.repeats.get(key)
    const count = last?.code === code ? last.count + 1 : 1
    this.repeats.set(key, { code, count })
    const warning = count >= 3 ? REPEAT_WARNING : undefined
    return answer(status, code, { success: false, error: { code, message, hint, warning, retryAfter } }, headers)
  }

  // Token bucket per key: `burst` requests at once, refilled at `rps`.
  private consumeRate (key: string): number {
    const limit = this.rateLimit
    if (limit === null) return 0
    const now = this.now()
    let bucket = this.buckets.get(key)
    if (bucket === undefined) {
      bucket = { tokens: limit.burst, last: now }
      this.buckets.set(key, bucket)
    }
    bucket.tokens = Math.min(limit.burst, bucket.tokens + Math.max(0, now - bucket.last) * limit.rps / 1000)
    bucket.last = now
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return 0
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / limit.rps))
  }

  // One draw per eligible request keeps the sequence reproducible: the n-th
  // eligible request always gets the same fate for a given seed.
  private randomFault (): RandomFault {
    const rates = this.faultRates
    if (rates === undefined) return undefined
    const r = this.random()
    if (r < rates.badGateway) return 'bad-gateway'
    if (r < rates.badGateway + rates.dropBefore) return 'drop-before'
    if (r < rates.badGateway + rates.dropBefore + rates.dropAfter) return 'drop-after'
    return undefined
  }

  private deliver (res: http.ServerResponse, record: RecordedRequest, outcome: Outcome, wait: number): void {
    const code = outcome.kind === 'answer' || outcome.kind === 'drop' ? outcome.code : outcome.kind === 'cut' ? outcome.code ?? 'CUT_BODY' : 'STALLED'
    record.status = outcome.kind === 'answer' || outcome.kind === 'cut' ? outcome.status : 0
    record.code = code
    const label = code ?? 'OK'
    this.byCode[label] = (this.byCode[label] ?? 0) + 1

    if (outcome.kind === 'stall') {
      this.held.add(res)
      res.once('close', () => this.held.delete(res))
      return
    }
    const send = (): void => {
      if (outcome.kind === 'drop') {
        res.destroy()
        return
      }
      if (outcome.kind === 'cut') {
        // The status and a content-length promising more than comes, half the body, then a reset.
        res.writeHead(outcome.status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(outcome.payload) + 100) })
        res.write(outcome.payload.slice(0, Math.floor(outcome.payload.length / 2)), () => { res.socket?.resetAndDestroy() })
        return
      }
      res.writeHead(outcome.status, {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(outcome.payload)),
        ...outcome.headers
      })
      res.end(outcome.payload)
    }
    if (wait > 0) {
      const timer = setTimeout(send, wait)
      // A client that gives up (or close()) must not leave a timer writing
      // into a dead socket.
      res.once('close', () => clearTimeout(timer))
    } else {
      send()
    }
  }
}

function append (map: Map<string, string[]>, token: string, message: string): void {
  const list = map.get(token)
  if (list === undefined) map.set(token, [message])
  else list.push(message)
}

/**
 * Starts a Vibe API simulator on loopback: a real HTTP server that checks the
 * key and the body, answers every documented error in the documented
 * envelope, records entries per token, and can be scripted.
 *
 * Run it in another process than an app that logs through `pino.transport()`
 * (`npx pino-bitrix24-workflow simulate` is one): on exit pino blocks that
 * app's main thread until the worker has closed, so a simulator in the same
 * thread cannot answer the last requests, and the completion waits out
 * `closeTimeout`. In a test in the same process, flush before `end()`.
 */
export function startSimulator (opts?: SimulatorOptions): Promise<Simulator> {
  return Simulator.start(opts)
}
