// A loopback stand-in for the Vibe API workflow endpoints. It is a real HTTP
// server (not a mocked dispatcher) so that the transport's agent, keep-alive,
// timeouts and socket errors are exercised exactly as they would be against
// vibecode.bitrix24.tech. Behaviour follows shared/spec/vibe-api.md; where the
// docs are vague the choice made here is explained next to the code.

import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { isIPv6 } from 'node:net'
import { isPlainObject, MAX_BODY, type Outcome, parseBody, scriptedAnswer, SimulatedPortal, takeFault } from './simulated-portal'
import type { RecordedRequest, ScriptedFault, SimulatorEvent, SimulatorOptions, SimulatorStats } from './simulator-types'

export type { Landed, RecordedRequest, ScriptedFault, SimulatorEvent, SimulatorOptions, SimulatorStats } from './simulator-types'

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
  private readonly latency: number
  private readonly maxRecorded: number
  /** The Bitrix24 side: keys, rate limit, workflows' rows and completions, random faults. */
  private readonly portal: SimulatedPortal
  private readonly scripts: ScriptedFault[] = []
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
    this.latency = opts.latency ?? 0
    this.maxRecorded = opts.maxRecorded ?? Infinity
    this.portal = new SimulatedPortal(opts)
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
    return this.portal.erased(eventToken)
  }

  /** The log rows of a workflow, oldest first: what Bitrix24 would show, its newest `keepRows` (a copy). */
  entries (eventToken: string): string[] {
    return this.portal.entries(eventToken)
  }

  /** The log rows of every workflow, by event token (a copy). */
  allEntries (): Map<string, string[]> {
    return this.portal.allEntries()
  }

  /** Log calls that answered success but were thrown away, having come after the completion (as Bitrix24 does). */
  ignored (eventToken: string): string[] {
    return this.portal.ignored(eventToken)
  }

  /** The completion of a workflow's activity, once it came. */
  event (eventToken: string): SimulatorEvent | undefined {
    return this.portal.event(eventToken)
  }

  /** From now on every call with this token answers 403 BITRIX_ACCESS_DENIED (an invalid or expired token). */
  killToken (eventToken: string): void {
    this.portal.kill(eventToken)
  }

  /** The workflow ended: on the wire the same as {@link killToken}. */
  finishWorkflow (eventToken: string): void {
    this.portal.kill(eventToken)
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
    this.portal.setRateLimit(limit)
  }

  /** Counters since the start or the last {@link reset}. */
  stats (): SimulatorStats {
    return { requests: this.requestCount, byCode: { ...this.byCode }, maxConcurrent: this.maxInFlight, rows: this.portal.rowsWritten, rowsErased: this.portal.rowsErased }
  }

  /** Most requests in flight at once for any one event token. */
  maxConcurrentPerToken (): number {
    return this.maxInFlightPerToken
  }

  /**
   * Forgets every request, entry, event, dead token, script and stall; keys,
   * latency, fault rates and rate limit stay.
   */
  reset (): void {
    this.requests.length = 0
    this.portal.reset()
    this.scripts.length = 0
    this.perToken.clear()
    this.stalled = false
    this.requestCount = 0
    this.byCode = {}
    this.maxInFlight = this.inFlight
    this.maxInFlightPerToken = 0
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
    const fault = this.stalled ? undefined : takeFault(this.scripts, path, token)
    if (this.stalled || fault?.stall === true) {
      outcome = { kind: 'stall' }
    } else if (fault?.drop === 'before') {
      outcome = { kind: 'drop', code: 'DROPPED_BEFORE' }
    } else if (fault !== undefined && (fault.status !== undefined || fault.code !== undefined || fault.body !== undefined)) {
      outcome = scriptedAnswer(fault)
    } else {
      outcome = this.portal.process(req, path, body, tooLarge)
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
