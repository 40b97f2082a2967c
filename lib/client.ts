import type { Dispatcher } from 'undici'
import type { Outcome } from './classify'
import { createDispatcher } from './dispatcher'
import { version } from '../package.json'

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
// retrying them can never write an entry twice. UND_ERR_INVALID_ARG is undici
// refusing the request itself (e.g. a header value it cannot send).
const NOT_SENT = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_INVALID_ARG'
])

export const USER_AGENT = `pino-bitrix24-workflow/${version}`

/**
 * Requests to the API through the transport's one dispatcher (a keep-alive
 * pool, or a proxy: see dispatcher.ts). `post` never rejects; every failure becomes an Outcome for classify().
 */
export class Client {
  private readonly pool: Dispatcher
  private readonly origin: string
  private readonly prefix: string
  private readonly headers: Record<string, string>

  constructor (opts: ClientOptions) {
    const url = new URL(opts.baseUrl)
    this.prefix = url.pathname === '/' ? '' : url.pathname
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
    try {
      const res = await this.pool.request({
        origin: this.origin,
        path: this.prefix + path,
        method: 'POST',
        headers: this.headers,
        body: JSON.stringify(payload)
      })
      // Always read the body to the end: an unread body keeps the socket from being reused.
      const body = await res.body.text()
      const retryAfter = res.headers['retry-after']
      return { status: res.statusCode, body, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter }
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
