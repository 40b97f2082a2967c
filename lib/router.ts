import type { Delivery } from './delivery'
import { type Formatter, levelValues, type PinoConfig } from './format'
import { shortToken } from './reporter'
import type { Stats } from './stats'
import { MAX_TOKEN_LENGTH } from './token-length'

export { MAX_TOKEN_LENGTH }

/** The log message of a completing line that could not be formatted: the activity is still completed. */
export const UNFORMATTABLE_TEXT = '(the log line could not be formatted)'

export interface RouterOptions {
  tokenKey: string
  eventKey: string
  /** Lines below this numeric level are skipped. */
  minLevel: number | undefined
  /** The logger's levels as pino sends them; default: pino's own levels. */
  levels?: PinoConfig['levels']
}

/**
 * The per-line path: decides in the cheapest way possible whether a line
 * belongs to a workflow, and hands formatted lines to delivery. It never throws
 * and never waits.
 */
export class Router {
  private readonly tokenKey: string
  private readonly eventKey: string
  private readonly needle: string
  private readonly minLevel: number | undefined
  /** Values by label, for lines whose level is a label (`formatters.level`); lower case too. */
  private readonly levelValues: Map<string, number>
  private readonly formatter: Formatter
  private readonly delivery: Delivery
  private readonly stats: Stats

  constructor (opts: RouterOptions, formatter: Formatter, delivery: Delivery, stats: Stats) {
    this.tokenKey = opts.tokenKey
    this.eventKey = opts.eventKey
    // A line can only carry the token key if the key's JSON spelling appears in
    // it: most lines of an app that mirrors all its logs are skipped without parsing.
    this.needle = JSON.stringify(opts.tokenKey)
    this.minLevel = opts.minLevel
    this.levelValues = levelValues(opts.levels)
    this.formatter = formatter
    this.delivery = delivery
    this.stats = stats
  }

  line (line: string): void {
    this.stats.received++
    if (!line.includes(this.needle)) {
      this.stats.skipped++
      return
    }
    let obj: unknown
    try {
      obj = JSON.parse(line)
    } catch {
      this.stats.malformed++
      return
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      this.stats.malformed++
      return
    }
    const record = obj as Record<string, unknown>
    const token = record[this.tokenKey]
    // `workflowEvent: true` completes with no return values; a plain object may carry them.
    const event = record[this.eventKey]
    const completes = event === true || plainObject(event)
    // A completing line is never filtered by level: the workflow waits for it.
    if (typeof token !== 'string' || token === '' || (!completes && this.minLevel !== undefined && this.below(record.level, this.minLevel))) {
      this.stats.skipped++
      return
    }
    if (token.length > MAX_TOKEN_LENGTH) {
      // Never a Map key, never sent: no token of Bitrix24's is this long.
      // The event names it shortened: no workflow has such a token, and the whole string is the attack.
      this.delivery.discard(shortToken(token), 'tokenTooLong')
      return
    }
    let text: string
    try {
      text = this.formatter.format(record)
    } catch {
      // E.g. a value nested too deep for JSON.stringify: any NDJSON source can send one.
      if (!completes) {
        this.delivery.discard(token, 'unformattable')
        return
      }
      text = UNFORMATTABLE_TEXT
    }
    if (!completes) {
      this.delivery.add(token, text)
      return
    }
    const returnValues = (event as { returnValues?: unknown }).returnValues
    this.delivery.complete(token, text, plainObject(returnValues) ? returnValues : {})
  }

  /**
   * Whether a line's level is below the minimum: a number as pino writes it,
   * or a label as `formatters: { level: (label) => ({ level: label }) }` does.
   * A level the logger does not know is let through rather than lost.
   */
  private below (level: unknown, min: number): boolean {
    if (typeof level === 'number') return level < min
    if (typeof level !== 'string') return false
    const n = this.levelValues.get(level) ?? this.levelValues.get(level.toLowerCase())
    return n !== undefined && n < min
  }
}

/** A JSON object, not an array or null: what Bitrix24 takes as return values. */
function plainObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}
