import type { Emit } from './events'
import type { Reporter } from './reporter'
import { shortToken } from './reporter'
import { MAX_TOKEN_LENGTH } from './router'
import type { DropReason, Stats } from './stats'

/**
 * What stderr says the first time lines are dropped for a reason, for the
 * reasons whose cause is not already reported where it happens (a refused
 * key, a dead token, a refused entry, exhausted retries each have their own
 * line, and shutdown drops are in the closing summary).
 */
const MESSAGES: Partial<Record<DropReason, (maxBufferedBytes: number) => string>> = {
  completed: () => 'lines were logged for an event token after its activity was completed; Bitrix24 would ignore them, so they are dropped',
  overflow: (max) => `more than maxBufferedBytes (${max}) is waiting to be sent; the oldest lines are dropped`,
  tokenTooLong: () => `lines whose event token is over ${MAX_TOKEN_LENGTH} characters are dropped: no Bitrix24 token is that long`,
  unformattable: () => 'a log line could not be formatted (nested too deep?); such lines are dropped'
}

/**
 * Drop accounting: every line given up on is counted under exactly one
 * reason, sent as a `bitrix24:drop` event with the full token, and explained
 * on stderr once per reason. A completion that failed is named per token.
 */
export class Drops {
  private readonly stats: Stats
  private readonly reporter: Reporter
  private readonly emit: Emit
  private readonly maxBufferedBytes: number

  constructor (stats: Stats, reporter: Reporter, emit: Emit, maxBufferedBytes: number) {
    this.stats = stats
    this.reporter = reporter
    this.emit = emit
    this.maxBufferedBytes = maxBufferedBytes
  }

  lines (reason: DropReason, lines: number, token: string, code?: string): void {
    if (lines === 0) return
    this.stats.dropped[reason] += lines
    const message = MESSAGES[reason]
    if (message !== undefined) this.reporter.problem(`DROP:${reason}`, message(this.maxBufferedBytes))
    this.emit('bitrix24:drop', { reason, lines, token, code })
  }

  /**
   * Each one may need a person to finish the activity by hand: named per token,
   * past the stderr budget. `unknown`: the request was in flight when time ran
   * out, so the server may have completed it. `spooled`: given up on at
   * shutdown but kept in the disk spool for the next start.
   */
  completionFailed (token: string, reason: DropReason, code: string | undefined, unknown = false, spooled = false): void {
    const text = spooled
      ? `the activity of event token ${shortToken(token)} was not completed by closeTimeout; it is kept in the disk spool, and the next start with the same spoolDir completes it`
      : unknown
        ? `the activity of event token ${shortToken(token)} may or may not be completed: its request was in flight when closeTimeout ran out; check the workflow before completing it by hand`
        : `the activity of event token ${shortToken(token)} could not be completed (${reason}${code === undefined ? '' : ' ' + code}); complete it by hand`
    this.reporter.problem(`COMPLETION_FAILED:${token}`, text, true)
    this.emit('bitrix24:completionFailed', { token, reason, code, outcome: unknown ? 'unknown' : 'failed' })
  }
}
