// What the simulator answers, and how an answer goes out on the wire: the
// Vibe API's envelope, the code ↔ status pairs, and the network faults
// (a drop, a cut body, a stall) that a script or the fault rates ask for.

import type http from 'node:http'
import type { ScriptedFault } from './simulator-faults'

/** What the simulator does with one request. */
export type Outcome =
  | { kind: 'answer', status: number, code?: string, payload: string, headers: Record<string, string> }
  | { kind: 'drop', code: 'DROPPED_BEFORE' | 'DROPPED_AFTER' }
  | { kind: 'cut', status: number, code?: string, payload: string }
  | { kind: 'stall' }

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

/** An answer with a JSON body. */
export function answer (status: number, code: string | undefined, body: unknown, headers: Record<string, string> = {}): Outcome {
  return { kind: 'answer', status, code, payload: JSON.stringify(body), headers }
}

/** The documented success of both endpoints. */
export const SUCCESS: Outcome = answer(200, undefined, { success: true, data: null })

/** The answer a script asks for by status, code or raw body. */
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

/** The code an outcome is recorded and counted under: undefined for a success. */
export function codeOf (outcome: Outcome): string | undefined {
  if (outcome.kind === 'answer' || outcome.kind === 'drop') return outcome.code
  return outcome.kind === 'cut' ? outcome.code ?? 'CUT_BODY' : 'STALLED'
}

/**
 * Sends `outcome` after `wait` ms. A stalled answer is never sent: its
 * response goes into `held` until the client or close() ends it.
 */
export function sendOutcome (res: http.ServerResponse, outcome: Outcome, wait: number, held: Set<http.ServerResponse>): void {
  if (outcome.kind === 'stall') {
    held.add(res)
    res.once('close', () => held.delete(res))
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
