import { Pool } from 'undici'
import type { Outcome } from './classify'
import { version } from '../package.json'

export interface ClientOptions {
  baseUrl: string
  apiKey: string
  sessionToken: string | undefined
  requestTimeout: number
  connections: number
}

// Errors raised before a single byte of the request can have left this machine:
// retrying them can never write an entry twice. UND_ERR_INVALID_ARG is undici
// refusing the request itself (e.g. a header value it cannot send).
const NOT_SENT = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_INVALID_ARG'
])

function first (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

export const USER_AGENT = `pino-bitrix24-workflow/${version}`

/**
 * The transport's one HTTP dispatcher: a keep-alive pool to the API origin.
 * `post` never rejects; every failure becomes an Outcome for classify().
 */
export class Client {
  private readonly pool: Pool
  private readonly prefix: string
  private readonly headers: Record<string, string>

  constructor (opts: ClientOptions) {
    const url = new URL(opts.baseUrl)
    this.prefix = url.pathname === '/' ? '' : url.pathname
    this.pool = new Pool(url.origin, {
      connections: opts.connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      connect: { timeout: opts.requestTimeout },
      headersTimeout: opts.requestTimeout,
      bodyTimeout: opts.requestTimeout
    })
    this.headers = {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      'x-api-key': opts.apiKey
    }
    if (opts.sessionToken !== undefined) this.headers.authorization = `Bearer ${opts.sessionToken}`
  }

  async post (path: string, payload: unknown): Promise<Outcome> {
    try {
      const res = await this.pool.request({
        path: this.prefix + path,
        method: 'POST',
        headers: this.headers,
        body: JSON.stringify(payload)
      })
      // Always read the body to the end: an unread body keeps the socket from being reused.
      const body = await res.body.text()
      const h = res.headers
      const outcome: Outcome = { status: res.statusCode, body, retryAfter: first(h['retry-after']) }
      // Only a server that sends them pays for carrying them.
      if (h['x-ratelimit-remaining'] !== undefined) {
        outcome.rateLimit = { limit: first(h['x-ratelimit-limit']), remaining: first(h['x-ratelimit-remaining']), reset: first(h['x-ratelimit-reset']) }
      }
      return outcome
    } catch (err) {
      const e = err as { code?: string, name?: string, message?: string }
      return {
        error: { code: e.code, name: e.name, message: e.message },
        sent: e.code === undefined || !NOT_SENT.has(e.code)
      }
    }
  }

  /** Waits for requests in flight, then closes the sockets. */
  async close (): Promise<void> {
    await this.pool.close()
  }

  /** Aborts requests in flight (their outcome is an error) and closes the sockets. */
  async destroy (): Promise<void> {
    await this.pool.destroy()
  }
}
