import { cannotSucceed, ERR_DEADLINE, ERR_NOT_CONNECTED, ERR_PROXY_AUTH, ERR_PROXY_REFUSED, ERR_SERIALIZE, type Outcome } from './classify'
import { createDispatcher } from './dispatcher'
import { codedError } from './errors'
import type { Answer, Requester } from './http-pool'

export { ERR_DEADLINE }
import { version } from './version'

export interface ClientOptions {
  baseUrl: string
  apiKey: string
  sessionToken: string | undefined
  requestTimeout: number
  connections: number
  /** http(s) URL of a proxy; else the proxy environment variables decide. */
  proxy?: string | undefined
  /** Where HTTPS_PROXY, HTTP_PROXY and NO_PROXY are read. Default: process.env. */
  env?: NodeJS.ProcessEnv
}

// Errors raised before a single byte of the request can have left this machine:
// retrying them can never write an entry twice. Requests that could not be built
// (a header value HTTP cannot carry) are among the failures cannotSucceed names.
const NOT_SENT = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL',
  ERR_NOT_CONNECTED, 'UND_ERR_CONNECT_TIMEOUT', ERR_SERIALIZE
])

/**
 * The most of an answer's body that is read. The envelope (`success`, `error.code`,
 * message, hint, warning) fits in far less; the rest is discarded unread, so a
 * server cannot make the transport hold a body of any size.
 */
export const MAX_ANSWER_BYTES = 16 * 1024

function first (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

export const USER_AGENT = `pino-bitrix24-workflow/${version}`

// How undici's proxy agent says that the proxy answered CONNECT with something else than 200 (code, message).
const PROXY_REFUSAL = /^UND_ERR_ABORTED Proxy response \((\d{3})\) !== 200/

/** A proxy's refusal of the tunnel, as one of our codes: nothing reached the API, and no retry mends it. */
function proxyRefusal (code: string | undefined, message: string | undefined): Outcome | undefined {
  const status = PROXY_REFUSAL.exec(`${code} ${message}`)?.[1]
  if (status === undefined) return undefined
  return { error: { code: status === '407' ? ERR_PROXY_AUTH : ERR_PROXY_REFUSED, message: `the proxy answered HTTP ${status} to CONNECT` }, sent: false }
}

/** Whether a failure with this code happened before any byte of the request left. */
export function notSent (code: string | undefined): boolean {
  // A failed TLS handshake (cannotSucceed) ends before the request is written.
  return code !== undefined && (NOT_SENT.has(code) || cannotSucceed(code))
}

/**
 * Reads at most MAX_ANSWER_BYTES of a body; a longer one is cut and its socket
 * let go. A body that breaks off (a reset, the deadline) gives what came: the
 * status has arrived, and the status is the outcome. Read through 'data'
 * events, not an async iterator: one answer per request, and the iterator's
 * promises cost more than the small body they carry.
 */
function readCapped (body: Answer['body']): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    let done = false
    const finish = (): void => {
      if (done) return
      done = true
      resolve(Buffer.concat(chunks).toString('utf8'))
    }
    // After destroy() no more data comes.
    body.on('data', (chunk) => {
      const room = MAX_ANSWER_BYTES - size
      if (chunk.length >= room) {
        chunks.push(chunk.subarray(0, room))
        finish()
        // Its connection is then closed rather than read to the end into nowhere.
        body.destroy()
        return
      }
      chunks.push(chunk)
      size += chunk.length
    })
    body.on('end', finish)
    // Cut after the status line, like a body cut at our cap: judged by the status.
    body.on('error', finish)
    body.on('close', finish)
  })
}

/**
 * Requests to the API through the transport's one dispatcher (a keep-alive
 * pool, or a proxy: see dispatcher.ts). `post` never rejects; every failure becomes an Outcome for classify().
 */
export class Client {
  private readonly pool: Requester
  private readonly origin: string
  private readonly prefix: string
  private readonly headers: Record<string, string>
  private readonly timeout: number

  constructor (opts: ClientOptions) {
    const url = new URL(opts.baseUrl)
    this.prefix = url.pathname === '/' ? '' : url.pathname
    this.timeout = opts.requestTimeout
    this.origin = url.origin
    this.pool = createDispatcher(url.origin, opts)
    this.headers = {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      'x-api-key': opts.apiKey
    }
    if (opts.sessionToken !== undefined) this.headers.authorization = `Bearer ${opts.sessionToken}`
  }

  async post (path: string, payload: unknown): Promise<Outcome> {
    let body: string
    try {
      // Before anything is sent: a payload that cannot be serialised is a local
      // failure, and no retry can ever make it succeed.
      body = JSON.stringify(payload)
    } catch (err) {
      return { error: { code: ERR_SERIALIZE, name: (err as Error).name, message: (err as Error).message }, sent: false }
    }
    // One deadline for the whole exchange: connecting, sending, and reading the answer.
    // Timeouts that restart at every byte would let a server trickling its body hold the request forever.
    const controller = new AbortController()
    const timer = setTimeout(() => {
      controller.abort(codedError(ERR_DEADLINE, `no answer within requestTimeout (${this.timeout} ms)`, 'RequestDeadlineError'))
    }, this.timeout)
    try {
      const res = await this.pool.request({
        origin: this.origin,
        path: this.prefix + path,
        method: 'POST',
        headers: this.headers,
        body,
        signal: controller.signal
      })
      const text = await readCapped(res.body)
      clearTimeout(timer)
      const h = res.headers
      const outcome: Outcome = { status: res.statusCode, body: text, retryAfter: first(h['retry-after']) }
      // Only a server that sends them pays for carrying them.
      if (h['x-ratelimit-remaining'] !== undefined) {
        outcome.rateLimit = { limit: first(h['x-ratelimit-limit']), remaining: first(h['x-ratelimit-remaining']), reset: first(h['x-ratelimit-reset']) }
      }
      return outcome
    } catch (err) {
      clearTimeout(timer)
      const e = err as { code?: string, name?: string, message?: string }
      const refused = proxyRefusal(e.code, e.message)
      if (refused !== undefined) return refused
      return {
        error: { code: e.code, name: e.name, message: e.message },
        sent: !notSent(e.code)
      }
    }
  }

  /** Aborts requests in flight (their outcome is an error) and closes the sockets. */
  async destroy (): Promise<void> {
    await this.pool.destroy()
  }
}
