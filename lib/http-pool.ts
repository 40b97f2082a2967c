import http from 'node:http'
import https from 'node:https'
import type { Socket } from 'node:net'
import { ERR_DESTROYED, ERR_NOT_CONNECTED } from './classify'
import { codedError } from './errors'

/** One request as the client makes it: undici's dispatchers take the same options. */
export interface RequestOptions {
  origin: string
  path: string
  method: 'POST'
  headers: Record<string, string>
  body: string
  signal: AbortSignal
}

/** What the client reads of an answer: undici's response data has the same shape. */
export interface Answer {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
  body: {
    on: (event: string, listener: (chunk: Buffer) => void) => unknown
    destroy: (err?: Error) => unknown
  }
}

/** The transport's one way to the API: a keep-alive pool (HttpPool), or undici's proxy agents (dispatcher.ts). */
export interface Requester {
  request: (opts: RequestOptions) => Promise<Answer>
  /** Aborts what is in flight (ERR_DESTROYED) and closes the connections; later requests fail the same way. */
  destroy: () => Promise<void>
}

export interface HttpPoolOptions {
  /** The most connections, hence requests, at once; more wait for one. */
  connections: number
  /** How long an idle connection is kept for the next request. */
  keepAliveTimeout: number
}

/**
 * Keep-alive connections to the API's origin, through Node's own HTTP client.
 * Its parser is native: undici's is WebAssembly, and V8 compiles it again
 * with its optimising tier a few answers after start, about 130 ms of CPU in
 * every process that logs to a workflow (docs/benchmarks.md). undici stays
 * for proxies (dispatcher.ts), loaded only when one is configured.
 *
 * The caller's signal is the deadline of the whole exchange: it aborts
 * connecting, sending and reading the answer alike. Aborted before its
 * connection was made, a request says so (ERR_NOT_CONNECTED): nothing of it
 * left this machine.
 */
export class HttpPool implements Requester {
  private readonly agent: http.Agent
  private readonly send: typeof http.request
  private readonly hostname: string
  private readonly port: string
  private readonly inFlight = new Set<http.ClientRequest>()
  private destroyed = false

  constructor (origin: string, opts: HttpPoolOptions) {
    const url = new URL(origin)
    const secure = url.protocol === 'https:'
    this.send = secure ? https.request : http.request
    // `timeout` closes a connection idle that long in the pool; a request's own time is the caller's deadline.
    const agent = { keepAlive: true, maxSockets: opts.connections, maxFreeSockets: opts.connections, timeout: opts.keepAliveTimeout }
    this.agent = secure ? new https.Agent(agent) : new http.Agent(agent)
    // An IPv6 literal is bracketed in a URL, not in a socket address.
    this.hostname = url.hostname.replace(/^\[(.*)\]$/, '$1')
    this.port = url.port
  }

  request (opts: RequestOptions): Promise<Answer> {
    return new Promise((resolve, reject) => {
      if (this.destroyed) {
        reject(codedError(ERR_DESTROYED, 'the client was closed'))
        return
      }
      // Encoded once: its length is the header, and the socket writes these bytes as they are.
      const body = Buffer.from(opts.body)
      let req: http.ClientRequest
      try {
        req = this.send({
          agent: this.agent,
          hostname: this.hostname,
          port: this.port,
          method: opts.method,
          path: opts.path,
          headers: { ...opts.headers, 'content-length': String(body.length) }
        })
      } catch (err) {
        // A header value HTTP cannot carry (ERR_INVALID_CHAR): refused before anything was sent.
        reject(err)
        return
      }
      let connected = false
      const onConnect = (): void => { connected = true }
      // A reused connection is connected already; a new one (TLS included) once its TCP connection is.
      req.once('socket', (socket: Socket) => {
        if (socket.connecting) socket.once('connect', onConnect)
        else connected = true
      })
      const abort = (): void => {
        const reason = opts.signal.reason as Error
        req.destroy(connected ? reason : codedError(ERR_NOT_CONNECTED, `aborted before a connection was made: ${reason.message}`))
      }
      const settle = (): void => {
        this.inFlight.delete(req)
        opts.signal.removeEventListener('abort', abort)
      }
      this.inFlight.add(req)
      // The deadline holds until the answer is read: removed when the response or the request ends.
      opts.signal.addEventListener('abort', abort, { once: true })
      req.once('response', (res) => {
        res.once('close', settle)
        resolve({ statusCode: res.statusCode as number, headers: res.headers, body: res })
      })
      req.on('error', (err) => {
        settle()
        reject(err)
      })
      req.end(body)
    })
  }

  async destroy (): Promise<void> {
    this.destroyed = true
    for (const req of this.inFlight) req.destroy(codedError(ERR_DESTROYED, 'the client was closed with the request in flight'))
    this.inFlight.clear()
    this.agent.destroy()
  }
}
