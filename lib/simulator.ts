// A loopback stand-in for the Vibe API workflow endpoints. It is a real HTTP
// server (not a mocked dispatcher) so that the transport's agent, keep-alive,
// timeouts and socket errors are exercised exactly as they would be against
// vibecode.bitrix24.tech. Behaviour follows shared/spec/vibe-api.md; where the
// docs are vague the choice made here is explained next to the code.

import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { isIPv6 } from 'node:net'
import { codeOf, type Outcome, scriptedAnswer, sendOutcome, SUCCESS, answer } from './simulator-answers'
import { Faults, type ScriptedFault } from './simulator-faults'
import { RateBuckets } from './simulator-rate'
import { authRefusal, type Call, headerText, isPlainObject, type Keys, readCall, type Refusal } from './simulator-checks'
import { type RecordedRequest, Traffic } from './simulator-traffic'
import { SimulatedWorkflows, type SimulatorEvent } from './simulator-workflows'

export type { RecordedRequest, ScriptedFault, SimulatorEvent }

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
  /**
   * Workflows remembered (rows, completion, ignored calls, a killed token):
   * past this many the oldest is forgotten. Default: all. The `simulate`
   * command keeps a bounded number.
   */
  maxWorkflows?: number
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
const WORKFLOW_PATHS: ReadonlySet<string> = new Set([ACTIVITY_LOG_PATH, EVENT_PATH])

// The API documents no size limit; 1 MiB is far above the 64 KB column a log
// entry lands in, so only a runaway client hits it.
const MAX_BODY = 1024 * 1024

const MAX_REPEAT_KEYS = 1000
const REPEAT_WARNING = 'The same error repeats on this key: the client most likely has a bug'
function parseBody (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    // Kept raw so tests can see exactly what a broken client sent.
    return text
  }
}

/**
 * A running simulator of the Vibe API workflow endpoints, on loopback. Get one
 * from {@link startSimulator}; point the transport's `baseUrl` at {@link url}.
 */
export class Simulator {
  /** Its origin, e.g. 'http://127.0.0.1:41234': the `baseUrl` for the transport. */
  readonly url: string
  /** Every request received, in order of arrival (the newest `maxRecorded`). */
  readonly requests: RecordedRequest[]

  private readonly server: http.Server
  private readonly now: () => number
  private readonly keys: Keys
  private readonly latency: number
  private readonly onLanded: ((landed: Landed) => void) | undefined
  private readonly workflows: SimulatedWorkflows
  private readonly faults: Faults
  private readonly rate: RateBuckets
  private readonly traffic: Traffic
  private readonly repeats = new Map<string, { code: string, count: number }>()
  private readonly held = new Set<http.ServerResponse>()
  private stalled = false

  private constructor (server: http.Server, url: string, opts: SimulatorOptions) {
    this.server = server
    this.url = url
    this.now = opts.now ?? Date.now
    this.keys = {
      api: new Set(opts.apiKeys ?? ['vibe_api_test_key']),
      app: new Set(opts.appKeys ?? ['vibe_app_test_key']),
      sessions: new Set(opts.sessionTokens ?? ['session_test_token']),
      expired: new Set(opts.expiredSessionTokens ?? [])
    }
    this.latency = opts.latency ?? 0
    this.traffic = new Traffic(opts.maxRecorded ?? Infinity)
    this.requests = this.traffic.requests
    this.onLanded = opts.onLanded
    this.workflows = new SimulatedWorkflows(opts.keepRows ?? 50, opts.maxWorkflows ?? Infinity)
    this.faults = new Faults(opts.faults, WORKFLOW_PATHS)
    this.rate = new RateBuckets(opts.rateLimit ?? null, this.now)
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
    return this.workflows.erased(eventToken)
  }

  /** The log rows of a workflow, oldest first: what Bitrix24 would show, its newest `keepRows` (a copy). */
  entries (eventToken: string): string[] {
    return this.workflows.entries(eventToken)
  }

  /** The log rows of every workflow, by event token (a copy). */
  allEntries (): Map<string, string[]> {
    return this.workflows.allEntries()
  }

  /** Log calls that answered success but were thrown away, having come after the completion (as Bitrix24 does). */
  ignored (eventToken: string): string[] {
    return this.workflows.ignored(eventToken)
  }

  /** The completion of a workflow's activity, once it came. */
  event (eventToken: string): SimulatorEvent | undefined {
    return this.workflows.event(eventToken)
  }

  /** From now on every call with this token answers 403 BITRIX_ACCESS_DENIED (an invalid or expired token). */
  killToken (eventToken: string): void {
    this.workflows.end(eventToken)
  }

  /** The workflow ended: on the wire the same as {@link killToken}. */
  finishWorkflow (eventToken: string): void {
    this.workflows.end(eventToken)
  }

  /** Queues one-shot answers: each serves the next request it matches, in order. */
  script (...faults: ScriptedFault[]): void {
    this.faults.add(faults)
  }

  /** While on, no request is answered: a server that hangs. */
  stall (on: boolean): void {
    this.stalled = on
  }

  /** Changes the per-key rate limit (null: none); buckets start full. */
  setRateLimit (limit: { rps: number, burst: number } | null): void {
    this.rate.set(limit)
  }

  /** Counters since the start or the last {@link reset}. */
  stats (): SimulatorStats {
    const { traffic, workflows } = this
    return { requests: traffic.count, byCode: { ...traffic.byCode }, maxConcurrent: traffic.maxInFlight, rows: workflows.written, rowsErased: workflows.erasedTotal }
  }

  /** Most requests in flight at once for any one event token. */
  maxConcurrentPerToken (): number {
    return this.traffic.maxInFlightPerToken
  }

  /**
   * Forgets every request, entry, event, dead token, script and stall; keys,
   * latency, fault rates and rate limit stay.
   */
  reset (): void {
    this.traffic.reset()
    this.workflows.reset()
    this.faults.reset()
    this.rate.reset()
    this.repeats.clear()
    this.stalled = false
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
    this.traffic.arrive(res)
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
    const record: RecordedRequest = { method: String(req.method), path, headers: { ...req.headers }, body, status: 0, at: this.now() }
    this.traffic.record(record, token, res)

    let outcome: Outcome
    const fault = this.stalled ? undefined : this.faults.take(path, token)
    if (this.stalled || fault?.stall === true) {
      outcome = { kind: 'stall' }
    } else if (fault?.drop === 'before') {
      outcome = { kind: 'drop', code: 'DROPPED_BEFORE' }
    } else if (fault !== undefined && (fault.status !== undefined || fault.code !== undefined || fault.body !== undefined)) {
      outcome = scriptedAnswer(fault)
    } else {
      outcome = this.process(req, path, body, tooLarge)
      // The request has been fully handled (entry landed or not); only the
      // answer is lost, which is what makes a retry write a duplicate.
      if (fault?.drop === 'after') outcome = { kind: 'drop', code: 'DROPPED_AFTER' }
      else if (fault?.drop === 'body' && outcome.kind === 'answer') outcome = { kind: 'cut', status: outcome.status, code: outcome.code, payload: outcome.payload }
    }
    this.traffic.answered(record, outcome.kind === 'answer' || outcome.kind === 'cut' ? outcome.status : 0, codeOf(outcome))
    sendOutcome(res, outcome, this.latency + (fault?.delay ?? 0), this.held)
  }

  // The documented order of checks: routing, size, auth, rate limit, request
  // shape, Bitrix24's own checks, then the network faults and the write.
  private process (req: http.IncomingMessage, path: string, body: unknown, tooLarge: boolean): Outcome {
    const key = headerText(req, 'x-api-key')
    if (!WORKFLOW_PATHS.has(path)) return this.fail(key, [404, 'NOT_FOUND', `No route for ${path}`])
    if (req.method !== 'POST') return this.fail(key, [405, 'METHOD_NOT_ALLOWED', `${path} accepts POST only`, undefined, { allow: 'POST' }])
    if (tooLarge) return this.fail(key, [413, 'PAYLOAD_TOO_LARGE', `Request body exceeds ${MAX_BODY} bytes`])
    const refused = authRefusal(req, key, this.keys)
    if (refused !== undefined) return this.fail(key, refused)
    const retryAfter = this.rate.consume(key)
    if (retryAfter > 0) {
      return this.fail(key, [429, 'RATE_LIMITED', 'Request rate limit exceeded', 'Retry in 1-2 seconds', { 'retry-after': String(retryAfter) }], retryAfter)
    }
    const isLog = path === ACTIVITY_LOG_PATH
    const call = readCall(req, body, isLog)
    if (Array.isArray(call)) return this.fail(key, call)
    const { eventToken } = call
    const completed = this.workflows.isCompleted(eventToken)
    if (this.workflows.isGone(eventToken) || (completed && !isLog)) {
      return this.fail(key, [403, 'BITRIX_ACCESS_DENIED', 'Bitrix24 rejected the request: the token is invalid, expired or already used'])
    }
    const random = this.faults.draw()
    if (random === 'bad-gateway') return this.fail(key, [502, 'BITRIX_UNAVAILABLE', 'Bitrix24 is unavailable'])
    if (random === 'drop-before') return { kind: 'drop', code: 'DROPPED_BEFORE' }
    this.land(call, isLog, completed)
    this.repeats.delete(key)
    return random === 'drop-after' ? { kind: 'drop', code: 'DROPPED_AFTER' } : SUCCESS
  }

  /** Writes what a call that passed every check leaves in the workflow. */
  private land ({ eventToken, message, logMessage, returnValues }: Call, isLog: boolean, completed: boolean): void {
    if (completed) {
      // The workflow is past the activity but still running: Bitrix24
      // accepts the call and throws the entry away.
      this.workflows.ignore(eventToken, message)
      this.onLanded?.({ kind: 'ignored', eventToken, message })
    } else if (isLog) {
      this.workflows.write(eventToken, message)
      this.onLanded?.({ kind: 'entry', eventToken, message })
    } else {
      const event: SimulatorEvent = { eventToken, returnValues: (returnValues ?? {}) as Record<string, unknown> }
      if (typeof logMessage === 'string') event.logMessage = message
      this.workflows.complete(event, message)
      this.onLanded?.({ kind: 'completion', eventToken, message, returnValues: event.returnValues })
    }
  }

  // Counts consecutive identical errors per key: a client that keeps
  // sending the same bad call gets the documented warning from the third on.
  private fail (key: string, [status, code, message, hint, headers]: Refusal, retryAfter?: number): Outcome {
    const last = this.repeats.get(key)
    // Keys come from outside, wrong ones too: a client that sends a new one each time must not grow this without end.
    if (last === undefined && this.repeats.size >= MAX_REPEAT_KEYS) this.repeats.clear()
    const count = last?.code === code ? last.count + 1 : 1
    this.repeats.set(key, { code, count })
    const warning = count >= 3 ? REPEAT_WARNING : undefined
    return answer(status, code, { success: false, error: { code, message, hint, warning, retryAfter } }, headers)
  }
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
