/** Why lines were given up on. Every drop is counted under exactly one reason. */
export const DROP_REASONS = [
  'overflow', 'rateLimited', 'auth', 'deadToken', 'rejected', 'retriesExhausted', 'ambiguous', 'completed', 'shutdown',
  'disabled', 'tokenTooLong', 'unformattable', 'lineTooLong', 'omitted', 'expired'
] as const

export type DropReason = typeof DROP_REASONS[number]

/** A completion to finish by hand ('failed') or to check first ('unknown': it may have landed). */
export interface FailedCompletion {
  token: string
  outcome: 'failed' | 'unknown'
}

/** Failed completions listed with their token in the stats; the rest are counted. Tokens are up to 512 characters. */
export const MAX_LISTED_COMPLETIONS = 1000

/** Counters of one transport, sent with the `bitrix24:stats` event. Lines, unless named otherwise. */
export interface Stats {
  /** Lines read from the logger. */
  received: number
  /** Lines without an event token, below `level`, or empty after formatting. */
  skipped: number
  /** Lines that were not JSON objects. */
  malformed: number
  /** Lines that reached the workflow log. */
  delivered: number
  /** Entries (requests that succeeded) written. */
  entries: number
  /** Activities completed through the stream. */
  completions: number
  /** Rows written to workflow logs: entries, and completions that carried a message. Each workflow keeps only its newest 50. */
  rows: number
  /** HTTP requests sent, retries included. */
  requests: number
  /** Requests sent again after a fault. */
  retries: number
  /** Retries of requests that may have landed: each may have written its entry twice. */
  possibleDuplicates: number
  /** Rate-limit answers (429, 504) met. */
  rateLimited: number
  /**
   * Lines whose request was still in flight when closeTimeout ran out: they may
   * have arrived, so they are counted neither as delivered nor as dropped.
   */
  unknown: number
  /** Completions that failed, or whose request was in flight at closeTimeout (outcome unknown). */
  completionsFailed: number
  /**
   * Their tokens, the first MAX_LISTED_COMPLETIONS of them (each one also has its
   * `bitrix24:completionFailed` event): stderr names only the first few.
   */
  failedCompletions: FailedCompletion[]
  /** Tokens whose lines are ready and wait for a request slot (pacing, a pause, concurrency). Refreshed when stats are emitted. */
  waitingTokens: number
  /** Age in ms of the oldest line still waiting to be sent; 0 when none waits. Refreshed when stats are emitted. */
  oldestWaitingMs: number
  /** Lines and completions written to the disk spool (spoolDir). */
  spooled: number
  /** Lines and completions taken from an earlier process's spool at start. */
  replayed: number
  /** Lines taken out of the spool unsettled, over spoolMaxBytes: kept in memory only. */
  unspooled: number
  /**
   * Lines and completions not sent by closeTimeout and left in the disk spool
   * (spoolDir): not dropped; the next start with the same spoolDir sends them.
   */
  leftInSpool: number
  dropped: Record<DropReason, number>
}

export function createStats (): Stats {
  const dropped = {} as Record<DropReason, number>
  for (const reason of DROP_REASONS) dropped[reason] = 0
  return {
    received: 0,
    skipped: 0,
    malformed: 0,
    delivered: 0,
    entries: 0,
    completions: 0,
    rows: 0,
    requests: 0,
    retries: 0,
    possibleDuplicates: 0,
    rateLimited: 0,
    unknown: 0,
    completionsFailed: 0,
    failedCompletions: [],
    waitingTokens: 0,
    oldestWaitingMs: 0,
    spooled: 0,
    replayed: 0,
    unspooled: 0,
    leftInSpool: 0,
    dropped
  }
}

export function totalDropped (stats: Stats): number {
  let n = 0
  for (const reason of DROP_REASONS) n += stats.dropped[reason]
  return n
}

/** `1 line`, `2 lines`: the summary is read by people. */
export function count (n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`
}

/** One line for stderr, or '' when there is nothing a person needs to know. */
export function summaryLine (stats: Stats): string {
  const dropped = totalDropped(stats)
  if (dropped === 0 && stats.retries === 0 && stats.rateLimited === 0 && stats.unknown === 0 && stats.completionsFailed === 0 && stats.leftInSpool === 0) return ''
  const reasons = DROP_REASONS.filter((r) => stats.dropped[r] > 0).map((r) => `${r} ${stats.dropped[r]}`)
  let line = `delivered ${count(stats.delivered, 'line', 'lines')} in ${count(stats.entries, 'entry', 'entries')}; dropped ${count(dropped, 'line', 'lines')}`
  if (reasons.length > 0) line += ` (${reasons.join(', ')})`
  // Before the rest: the line is cut at 200 characters.
  if (stats.leftInSpool > 0) line += `; ${count(stats.leftInSpool, 'line', 'lines')} left in the disk spool for the next start`
  if (stats.unknown > 0) line += `; outcome unknown for ${count(stats.unknown, 'line', 'lines')} (in flight at closeTimeout: they may have arrived)`
  line += `; ${count(stats.retries, 'retry', 'retries')}, ${stats.possibleDuplicates} possibly duplicated; ${count(stats.rateLimited, 'rate-limit answer', 'rate-limit answers')}`
  if (stats.completionsFailed > 0) {
    line += `; ${count(stats.completionsFailed, 'completion', 'completions')} not done: complete by hand (their tokens are in the bitrix24:stats and bitrix24:completionFailed events)`
  }
  return line
}
