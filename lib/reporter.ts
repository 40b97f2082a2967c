import { writeSync } from 'node:fs'
import type { Clock } from './clock'
import { PREFIX } from './prefix'
import type { Redactor } from './redact'

// A misbehaving server must not flood the application's stderr.
const LINES_PER_MINUTE = 6
/** Longest stderr line, newline aside: the fix is in the line, the detail in the README under its code. */
export const MAX_LINE_LENGTH = 200
/** Longest report, in characters after the prefix: what the server said comes last and is cut first. */
export const MAX_REPORT_LENGTH = MAX_LINE_LENGTH - PREFIX.length
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

/**
 * A token shortened for output: enough of both ends to tell tokens apart
 * (tokens of one portal share their beginning, test tokens their length), and
 * never more than half of a long one, which is not enough to use it.
 */
export function shortToken (token: string): string {
  if (token.length <= 6) return token.slice(0, 1) + '…' + token.slice(-2)
  if (token.length <= 12) return token.slice(0, 3) + '…' + token.slice(-3)
  return token.slice(0, 6) + '…' + token.slice(-4)
}

/**
 * The human side of failure: the first occurrence of each kind of problem is
 * written at once with its meaning and fix; repeats are only counted, and at
 * most a few lines a minute reach stderr whatever happens.
 */
export class Reporter {
  private readonly write: (text: string) => void
  private readonly clock: Clock
  private readonly redactor: Redactor | undefined
  private readonly seen = new Set<string>()
  private readonly reported = new Set<string>()
  private windowStart = -Infinity
  private windowLines = 0
  suppressed = 0

  /** `redactor`: the configured secrets, taken out of every line written. */
  constructor (write: (text: string) => void, clock: Clock, redactor?: Redactor) {
    this.write = write
    this.clock = clock
    this.redactor = redactor
  }

  /**
   * Reports a kind of problem once; returns whether a line was written. A kind
   * held back by the budget is written at its next occurrence that fits. Every
   * kind meets the one budget: what must be acted on is also counted in the
   * closing summary and carried by events.
   */
  problem (kind: string, text: string): boolean {
    // Not remembered: written as the budget allows, each time.
    if (!this.seen.has(kind) && this.seen.size >= MAX_KINDS) return this.line(text)
    this.seen.add(kind)
    if (this.reported.has(kind)) return false
    if (!this.line(text)) return false
    this.reported.add(kind)
    return true
  }

  /**
   * A line that is news each time it happens (Redis went away, came back): written
   * as the budget allows, never remembered as a kind, so that a flapping
   * connection does not use up the kinds other problems are told once by.
   */
  say (text: string): boolean {
    return this.line(text)
  }

  /** A line that is written whatever the budget: the closing summary only. */
  always (text: string): void {
    // Cleaned before the secrets are looked for, then cut: a secret split by a control
    // character or an escape sequence would be joined again by the cleaning.
    this.write(PREFIX + oneLine(this.redactor === undefined ? text : this.redactor.redact(oneLine(text, Infinity))) + '\n')
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
