import { writeSync } from 'node:fs'
import type { Clock } from './clock'
import { PREFIX } from './prefix'

// A misbehaving server must not flood the application's stderr.
const LINES_PER_MINUTE = 6
/** Longest report, in characters after the prefix: far above any of ours with a server's hint. */
export const MAX_REPORT_LENGTH = 1000
// Kinds remembered for "once per kind": server codes are part of some kinds, and a
// hostile server can invent a new one per answer.
const MAX_KINDS = 1024

// What a terminal would act on rather than show. Escape sequences go whole (CSI,
// OSC, and the two-character ones), so no `[2J` is left behind; then line breaks
// of every kind become spaces (one report is one line), and the remaining C0 and
// C1 controls, DEL and the bidi controls that reorder what is shown are removed.
/* eslint-disable no-control-regex */
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]?|\x9b[0-?]*[ -/]*[@-~]?|(?:\x1b[\]P^_X]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)|\x1b[ -~]?/g
const BREAKS = /[\t\n\v\f\r\x85\u2028\u2029]+/g
const CONTROLS = /[\0-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g
const UNSAFE = /[\0-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069]/
/* eslint-enable no-control-regex */

/**
 * Text made safe for one line of a terminal: no escape sequences, no line
 * breaks, no control or bidi characters, at most `max` characters. Reports carry
 * what servers and log lines sent (hints, codes, tokens); the reporter applies it
 * to every line it writes, so no caller can forget it.
 */
export function oneLine (text: string, max = MAX_REPORT_LENGTH): string {
  let out = UNSAFE.test(text) ? text.replace(ESCAPES, '').replace(BREAKS, ' ').replace(CONTROLS, '') : text
  if (out.length > max) {
    let cut = max - 1
    // Never half a surrogate pair.
    if (cut > 0 && (out.charCodeAt(cut - 1) & 0xfc00) === 0xd800) cut--
    out = out.slice(0, cut) + '…'
  }
  return out
}

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
    const seen = this.seen.get(kind)
    if (seen === undefined && this.seen.size >= MAX_KINDS) {
      // Not remembered: written as the budget allows (urgent: always), never counted per kind.
      if (urgent) this.always(text)
      else return this.line(text)
      return true
    }
    this.seen.set(kind, (seen ?? 0) + 1)
    if (this.reported.has(kind)) return false
    if (urgent) this.always(text)
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
    this.write(PREFIX + oneLine(text) + '\n')
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
    this.always(text)
    return true
  }
}
