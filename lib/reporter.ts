import { writeSync } from 'node:fs'
import type { Clock } from './clock'

const PREFIX = 'pino-bitrix24-workflow: '
// A misbehaving server must not flood the application's stderr.
const LINES_PER_MINUTE = 6

/**
 * Writes to stderr synchronously: inside pino's worker an asynchronous write is
 * lost when the worker exits right after close, and the closing summary is the
 * line that matters most. A non-blocking pipe may answer EAGAIN; try again.
 */
export function writeStderr (text: string): void {
  for (let tries = 0; tries < 100; tries++) {
    try {
      writeSync(2, text)
      return
    } catch (err) {
      if ((err as { code?: string }).code !== 'EAGAIN') return
    }
  }
}

/** A token shortened for output: enough to tell tokens apart, not enough to use one. */
export function shortToken (token: string): string {
  return token.length <= 12 ? token.slice(0, 3) + '…' : token.slice(0, 6) + '…' + token.slice(-4)
}

/**
 * The human side of failure: the first occurrence of each kind of problem is
 * written at once with its meaning and fix; repeats are only counted, and at
 * most a few lines a minute reach stderr whatever happens.
 */
export class Reporter {
  private readonly write: (text: string) => void
  private readonly clock: Clock
  private readonly seen = new Map<string, number>()
  private readonly reported = new Set<string>()
  private windowStart = -Infinity
  private windowLines = 0
  suppressed = 0

  constructor (write: (text: string) => void, clock: Clock) {
    this.write = write
    this.clock = clock
  }

  /**
   * Reports a kind of problem once; returns whether a line was written. A kind
   * held back by the budget is written at its next occurrence that fits; an
   * `urgent` one (a person must act on it) is written whatever the budget.
   */
  problem (kind: string, text: string, urgent = false): boolean {
    this.seen.set(kind, (this.seen.get(kind) ?? 0) + 1)
    if (this.reported.has(kind)) return false
    if (urgent) this.write(PREFIX + text + '\n')
    else if (!this.line(text)) return false
    this.reported.add(kind)
    return true
  }

  /** How often a kind of problem happened. */
  count (kind: string): number {
    return this.seen.get(kind) ?? 0
  }

  /** A line that is written whatever the budget (the closing summary). */
  always (text: string): void {
    this.write(PREFIX + text + '\n')
  }

  private line (text: string): boolean {
    const now = this.clock.now()
    if (now - this.windowStart >= 60_000) {
      this.windowStart = now
      this.windowLines = 0
    }
    if (this.windowLines >= LINES_PER_MINUTE) {
      this.suppressed++
      return false
    }
    this.windowLines++
    this.write(PREFIX + text + '\n')
    return true
  }
}
