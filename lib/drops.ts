import type { Emit } from './events'
import type { Reporter } from './reporter'
import { shortToken } from './reporter'
import { MAX_TOKEN_LENGTH } from './token-length'
import { type DropReason, MAX_LISTED_COMPLETIONS, type Stats } from './stats'

// Failed completions named on stderr one by one, within the stderr budget; the rest are counted.
export const NAMED_COMPLETIONS = 3

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
  omitted: () => 'a workflow logged more than its maxRows rows can hold: lines between its first and its newest ones were left out, and a line in its log says how many',
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
   * Each one may need a person to finish the activity by hand. The first few are
   * named on stderr, within the one stderr budget; the rest are counted (the
   * closing summary) and listed with their tokens in the stats; every one has its
   * event. `unknown`: the request was in flight when time ran out, so the server
   * may have completed it. `spooled`: given up on at shutdown but kept in the
   * disk spool, which the next start completes: said once, not counted as failed.
   */
  completionFailed (token: string, reason: DropReason, code: string | undefined, unknown = false, spooled = false): void {
    if (spooled) {
      this.emit('bitrix24:completionFailed', { token, reason, code, outcome: 'spooled' })
      this.reporter.problem('COMPLETION_SPOOLED', `the activity of event token ${shortToken(token)} was not completed by closeTimeout; it stays in the disk spool and the next start with the same spoolDir completes it`)
      return
    }
    const outcome = unknown ? 'unknown' : 'failed'
    this.emit('bitrix24:completionFailed', { token, reason, code, outcome })
    const failed = ++this.stats.completionsFailed
    if (this.stats.failedCompletions.length < MAX_LISTED_COMPLETIONS) this.stats.failedCompletions.push({ token, outcome })
    if (failed <= NAMED_COMPLETIONS) {
      const text = unknown
        ? `the activity of event token ${shortToken(token)} may or may not be completed: its request was in flight when closeTimeout ran out; check the workflow before completing it by hand`
        : `the activity of event token ${shortToken(token)} could not be completed (${reason}${code === undefined ? '' : ' ' + code}); complete it by hand`
      this.reporter.problem(`COMPLETION_FAILED:${token}`, text)
    } else if (failed === NAMED_COMPLETIONS + 1) {
      this.reporter.problem('COMPLETIONS_FAILED', 'more activities could not be completed: they are counted in the closing summary; their tokens are in the bitrix24:stats event (failedCompletions) and each in a bitrix24:completionFailed event')
    }
  }
}
