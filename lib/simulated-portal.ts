import type http from 'node:http'
import type { Landed, ScriptedFault, SimulatorEvent, SimulatorOptions } from './simulator-types'

const ACTIVITY_LOG_PATH = '/v1/workflows/activity-log'
const EVENT_PATH = '/v1/workflows/event'
export const WORKFLOW_PATHS = new Set([ACTIVITY_LOG_PATH, EVENT_PATH])

// The API documents no size limit; 1 MiB is far above the 64 KB column a log
// entry lands in, so only a runaway client hits it.
export const MAX_BODY = 1024 * 1024

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

/** What the simulator does with one request. */
export type Outcome =
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

export function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function parseBody (text: string): unknown {
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

/** Takes the first scripted fault that matches a request out of `scripts`: each serves one request. */
export function takeFault (scripts: ScriptedFault[], path: string, token: string | undefined): ScriptedFault | undefined {
  const index = scripts.findIndex(fault =>
    (fault.path === undefined ? WORKFLOW_PATHS.has(path) : fault.path === path) &&
    (fault.token === undefined || fault.token === token))
  return index === -1 ? undefined : scripts.splice(index, 1)[0]
}

/** The answer a scripted fault names: its own status, code and body, the envelope filled in as the API would. */
export function scriptedAnswer (fault: ScriptedFault): Outcome {
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

/**
 * The Bitrix24 side of the simulator: checks a request's route, size, key,
 * rate and shape in the documented order, writes log rows (each workflow
 * keeping its newest `keepRows`) and completions, and answers; random faults
 * come from a seeded PRNG. The HTTP server, the scripted faults and the
 * recording of requests are the Simulator's.
 */
export class SimulatedPortal {
  private readonly now: () => number
  private readonly apiKeys: Set<string>
  private readonly appKeys: Set<string>
  private readonly sessions: Set<string>
  private readonly expiredSessions: Set<string>
  private readonly faultRates: { badGateway: number, dropBefore: number, dropAfter: number } | undefined
  private readonly seed: number
  private random: () => number
  private rateLimit: { rps: number, burst: number } | null
  private readonly onLanded: ((landed: Landed) => void) | undefined
  private readonly landed = new Map<string, string[]>()
  private readonly keepRows: number
  private readonly erasedRows = new Map<string, number>()
  /** Log rows written and erased, in all workflows. */
  rowsWritten = 0
  rowsErased = 0
  private readonly ignoredEntries = new Map<string, string[]>()
  private readonly events = new Map<string, SimulatorEvent>()
  // Killed and finished tokens behave the same on the wire: the workflow is
  // gone, so Bitrix24 refuses every call carrying the token.
  private readonly gone = new Set<string>()
  private readonly buckets = new Map<string, Bucket>()
  private readonly repeats = new Map<string, { code: string, count: number }>()

  constructor (opts: SimulatorOptions) {
    this.now = opts.now ?? Date.now
    this.apiKeys = new Set(opts.apiKeys ?? ['vibe_api_test_key'])
    this.appKeys = new Set(opts.appKeys ?? ['vibe_app_test_key'])
    this.sessions = new Set(opts.sessionTokens ?? ['session_test_token'])
    this.expiredSessions = new Set(opts.expiredSessionTokens ?? [])
    this.keepRows = opts.keepRows ?? 50
    this.rateLimit = opts.rateLimit ?? null
    this.onLanded = opts.onLanded
    const faults = opts.faults
    this.faultRates = faults === undefined
      ? undefined
      : { badGateway: faults.status502Rate ?? 0, dropBefore: faults.dropBeforeRate ?? 0, dropAfter: faults.dropAfterRate ?? 0 }
    this.seed = faults?.seed ?? 1
    this.random = prng(this.seed)
  }

  erased (eventToken: string): number {
    return this.erasedRows.get(eventToken) ?? 0
  }

  entries (eventToken: string): string[] {
    return [...(this.landed.get(eventToken) ?? [])]
  }

  allEntries (): Map<string, string[]> {
    return new Map([...this.landed].map(([token, list]) => [token, [...list]]))
  }

  ignored (eventToken: string): string[] {
    return [...(this.ignoredEntries.get(eventToken) ?? [])]
  }

  event (eventToken: string): SimulatorEvent | undefined {
    return this.events.get(eventToken)
  }

  /** The workflow is gone (a dead token, or a finished workflow): every call with its token is refused. */
  kill (eventToken: string): void {
    this.gone.add(eventToken)
  }

  setRateLimit (limit: { rps: number, burst: number } | null): void {
    this.rateLimit = limit
    this.buckets.clear()
  }

  // The fault PRNG restarts so a reset run sees the same fault sequence as a
  // fresh simulator.
  reset (): void {
    this.landed.clear()
    this.erasedRows.clear()
    this.rowsWritten = 0
    this.rowsErased = 0
    this.ignoredEntries.clear()
    this.events.clear()
    this.gone.clear()
    this.buckets.clear()
    this.repeats.clear()
    this.random = prng(this.seed)
  }

  // The documented order of checks: routing, size, auth, rate limit, request
  // shape, Bitrix24's own checks, then the network faults and the write.
  process (req: http.IncomingMessage, path: string, body: unknown, tooLarge: boolean): Outcome {
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
}

function append (map: Map<string, string[]>, token: string, message: string): void {
  const list = map.get(token)
  if (list === undefined) map.set(token, [message])
  else list.push(message)
}
