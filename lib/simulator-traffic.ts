// What the simulator counts of its traffic: every request as it saw it (the
// newest `maxRecorded`), answers per code, and how many were in flight at
// once, in all and per event token.

import type http from 'node:http'

/** One request as the simulator saw it, in `Simulator.requests`. */
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

/** The requests and counters of one simulator. */
export class Traffic {
  /** Every request received (the newest `maxRecorded`), in order of arrival. */
  readonly requests: RecordedRequest[] = []
  count = 0
  byCode: Record<string, number> = {}
  maxInFlight = 0
  maxInFlightPerToken = 0
  private inFlight = 0
  private readonly perToken = new Map<string, { inFlight: number }>()

  constructor (private readonly maxRecorded: number) {}

  /** A request arrived; it is in flight until its response closes. */
  arrive (res: http.ServerResponse): void {
    this.count++
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    // 'close' fires once whether the answer was sent or the socket died.
    res.once('close', () => { this.inFlight-- })
  }

  /** Records a request whose body has been read; `token` is the event token it carries. */
  record (record: RecordedRequest, token: string | undefined, res: http.ServerResponse): void {
    this.requests.push(record)
    // Half the cap at a time: one splice per many requests, not one per request.
    if (this.requests.length > this.maxRecorded) this.requests.splice(0, this.requests.length - Math.floor(this.maxRecorded / 2))
    if (token === undefined) return
    let slot = this.perToken.get(token)
    if (slot === undefined) {
      slot = { inFlight: 0 }
      this.perToken.set(token, slot)
    }
    const counted = slot
    counted.inFlight++
    this.maxInFlightPerToken = Math.max(this.maxInFlightPerToken, counted.inFlight)
    // A slot lives while its token has requests in flight: tokens come from outside.
    res.once('close', () => { if (--counted.inFlight === 0) this.perToken.delete(token) })
  }

  /** Counts the answer of a recorded request. */
  answered (record: RecordedRequest, status: number, code: string | undefined): void {
    record.status = status
    record.code = code
    const label = code ?? 'OK'
    this.byCode[label] = (this.byCode[label] ?? 0) + 1
  }

  /** Forgets every request and count; requests still in flight stay counted as such. */
  reset (): void {
    this.requests.length = 0
    this.perToken.clear()
    this.count = 0
    this.byCode = {}
    this.maxInFlight = this.inFlight
    this.maxInFlightPerToken = 0
  }
}
