/**
 * Turns one parsed pino line into one line of text for a business user, e.g.
 * `12:03:04 INFO Rows parsed rows=120`. The template is compiled once, so the
 * per-line work is a walk over the line's own keys.
 */

/** What pino tells a transport about the logger (see pino-abstract-transport's expectPinoConfig). */
export interface PinoConfig {
  levels?: { labels?: Record<string, string>, values?: Record<string, number> }
  messageKey?: string
  errorKey?: string
}

export interface FormatOptions {
  messageFormat: string
  include: string[] | undefined
  exclude: string[]
  tokenKey: string
  eventKey: string
  errorStackFrames: number
  /** IANA zone of `{time}`; undefined: the process's local zone. */
  timeZone?: string | undefined
}

type Part = { literal: string } | { field: string, path: string[] }

/** A compiled part: every one has the same shape, so the per-line loop stays monomorphic. */
interface Step {
  literal: string
  /** undefined for a literal. */
  get: ((line: Record<string, unknown>) => string) | undefined
}

export const DEFAULT_LABELS: Record<string, string> = {
  10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal'
}

// pino's own bookkeeping means nothing to a person reading a workflow log.
const ALWAYS_HIDDEN = ['pid', 'hostname', 'time', 'level', 'v']

const SPECIAL = new Set(['time', 'level', 'msg', 'fields'])

const UNQUOTED = /^[^\s="\\]+$/

const MAX_DATE = 8.64e15

const EQUALS = 61

function value (v: unknown): string {
  if (typeof v === 'string') return UNQUOTED.test(v) ? v : JSON.stringify(v)
  if (typeof v === 'object') return JSON.stringify(v)
  return String(v)
}

/**
 * Milliseconds since the epoch of a line's `time`, whatever pino's time
 * function wrote: epoch milliseconds (`epochTime`, the default), seconds
 * (`unixTime`), an ISO string (`isoTime`, `isoTimeNano`), or a number as a
 * string. NaN when it is none of these.
 */
export function epochMs (t: unknown): number {
  if (typeof t === 'string') return /^\d+(\.\d+)?$/.test(t) ? fromNumber(Number(t)) : Date.parse(t)
  return typeof t === 'number' ? fromNumber(t) : NaN
}

// The unit is read off the magnitude: 1e11 s is the year 5138, 1e11 ms is
// 1973, so no time a log line can carry is ambiguous.
function fromNumber (n: number): number {
  const size = Math.abs(n)
  if (!Number.isFinite(n)) return NaN
  if (size < 1e11) return n * 1000
  if (size < 1e14) return n
  return size < 1e17 ? n / 1000 : n / 1e6
}

// One per zone: the first one a process makes costs tens of milliseconds (ICU loads its data).
const clocks = new Map<string | undefined, Intl.DateTimeFormat>()

/**
 * The `{time}` clock of a zone (undefined: the process's own), made once.
 * The transport asks for it at start-up, so that the first lines do not wait for ICU.
 */
export function clockFormat (timeZone: string | undefined): Intl.DateTimeFormat {
  let clock = clocks.get(timeZone)
  if (clock === undefined) {
    clock = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' })
    clocks.set(timeZone, clock)
  }
  return clock
}

export class Formatter {
  private readonly steps: Step[]
  private readonly hidden: Set<string>
  private readonly include: Set<string> | undefined
  private readonly fieldsInTemplate: boolean
  /** Upper-case labels by level number, made once rather than per line. */
  private readonly labels: Map<number, string>
  private readonly messageKey: string
  private readonly errorKey: string
  private readonly stackFrames: number
  /** Made once: constructing one is far dearer than using it. */
  private readonly clock: Intl.DateTimeFormat
  // Lines of one burst share their second: format the clock once per second, not per line.
  private lastRaw: unknown = undefined
  private lastSecond = NaN
  private lastTime = ''
  /** The first and last character codes of what fields() returned last (-1: nothing), so that format() need not read them back. */
  private fieldsFirst = -1
  private fieldsLast = -1

  constructor (opts: FormatOptions, pino: PinoConfig = {}) {
    this.messageKey = pino.messageKey ?? 'msg'
    this.errorKey = pino.errorKey ?? 'err'
    const labels = pino.levels?.labels ?? DEFAULT_LABELS
    this.labels = new Map(Object.entries(labels).map(([n, label]) => [Number(n), label.toUpperCase()]))
    this.stackFrames = opts.errorStackFrames
    this.clock = clockFormat(opts.timeZone)
    const parts = compile(opts.messageFormat)
    this.steps = parts.map((p) => 'literal' in p ? { literal: p.literal, get: undefined } : { literal: '', get: this.getter(p) })
    this.fieldsInTemplate = parts.some((p) => 'field' in p && p.field === 'fields')
    this.include = opts.include === undefined ? undefined : new Set(opts.include)
    this.hidden = new Set([...ALWAYS_HIDDEN, this.messageKey, opts.tokenKey, opts.eventKey, ...opts.exclude])
    for (const p of parts) {
      // A field named in the template is not repeated among the rest; the
      // special placeholders stand for keys that are hidden already.
      if ('field' in p && !SPECIAL.has(p.field)) this.hidden.add(p.path[0] as string)
    }
  }

  format (line: Record<string, unknown>): string {
    // The text is built by appending, never read back: reading a character of a
    // string built with += flattens it (a copy per line). Its first and last
    // characters are kept aside instead, for the spacing and trimming checks.
    let out = ''
    let first = -1
    let last = -1
    let skipSpace = false
    for (const step of this.steps) {
      let piece: string
      if (step.get === undefined) {
        piece = skipSpace && step.literal.charCodeAt(0) === 32 ? step.literal.slice(1) : step.literal
        skipSpace = false
      } else {
        piece = step.get(line)
        // An absent field leaves no double space behind.
        skipSpace = piece === ''
      }
      if (piece === '') continue
      if (first === -1) first = piece.charCodeAt(0)
      last = piece.charCodeAt(piece.length - 1)
      out += piece
    }
    if (!this.fieldsInTemplate) {
      const rest = this.fields(line)
      if (rest !== '') {
        if (first === -1) {
          out = rest
          first = this.fieldsFirst
        } else {
          out += last === 32 ? rest : ' ' + rest
        }
        last = this.fieldsLast
      }
    }
    // Trimming allocates: only when there is something to trim.
    return first <= 32 || last <= 32 ? out.trim() : out
  }

  /** What a placeholder reads from a line, decided once per template rather than per line. */
  private getter (part: { field: string, path: string[] }): (line: Record<string, unknown>) => string {
    switch (part.field) {
      case 'time': return (line) => this.time(line.time)
      case 'level': return (line) => this.level(line.level)
      case 'msg': return (line) => {
        const msg = line[this.messageKey]
        return msg === undefined || msg === null ? '' : typeof msg === 'string' ? msg : value(msg)
      }
      case 'fields': return (line) => this.fields(line)
    }
    const { path } = part
    // The error named in a template reads as it does among the fields, stack frames included.
    if (path.length === 1 && path[0] === this.errorKey) {
      return (line) => {
        const e = line[this.errorKey]
        return e === undefined || e === null ? '' : this.error(e)
      }
    }
    return (line) => {
      let v: unknown = line
      for (const key of path) {
        // Own keys only: `{constructor}` must not reach Object.prototype (and print a function's source).
        if (v === null || typeof v !== 'object' || !Object.hasOwn(v, key)) return ''
        v = (v as Record<string, unknown>)[key]
      }
      if (v === undefined || v === null) return ''
      return typeof v === 'string' ? v : value(v)
    }
  }

  private time (t: unknown): string {
    if (t === this.lastRaw) return this.lastTime
    const ms = epochMs(t)
    // A Date holds ±8.64e15 ms; beyond it every field of the clock is NaN.
    if (!Number.isFinite(ms) || Math.abs(ms) > MAX_DATE) return typeof t === 'string' ? t : ''
    const second = Math.floor(ms / 1000)
    if (second !== this.lastSecond) {
      this.lastSecond = second
      let text = ''
      for (const part of this.clock.formatToParts(second * 1000)) {
        if (part.type === 'hour' || part.type === 'minute' || part.type === 'second') text += (text === '' ? '' : ':') + part.value
      }
      this.lastTime = text
    }
    this.lastRaw = t
    return this.lastTime
  }

  private level (l: unknown): string {
    if (typeof l === 'number') return this.labels.get(l) ?? String(l)
    return typeof l === 'string' ? l.toUpperCase() : ''
  }

  private error (e: unknown): string {
    if (e === null || typeof e !== 'object') return value(e)
    const err = e as { type?: unknown, message?: unknown, stack?: unknown }
    const type = typeof err.type === 'string' ? err.type : 'Error'
    let text = err.message === undefined || err.message === '' ? type : `${type}: ${String(err.message)}`
    if (this.stackFrames > 0 && typeof err.stack === 'string') {
      const frames = err.stack.split('\n').filter((l) => l.trimStart().startsWith('at ')).slice(0, this.stackFrames)
      for (const frame of frames) text += '\n    ' + frame.trim()
    }
    return text
  }

  private fields (line: Record<string, unknown>): string {
    let out = ''
    let last = -1
    for (const key in line) {
      if (this.hidden.has(key)) continue
      if (this.include !== undefined && !this.include.has(key)) continue
      const v = line[key]
      if (v === undefined) continue
      const text = key === this.errorKey ? this.error(v) : value(v)
      if (last === -1) {
        // JSON allows an empty key: the line then starts with its '='.
        this.fieldsFirst = key === '' ? EQUALS : key.charCodeAt(0)
        out = key + '=' + text
      } else {
        out += ' ' + key + '=' + text
      }
      last = text.charCodeAt(text.length - 1)
    }
    this.fieldsLast = last
    return out
  }
}

/**
 * The logger's levels by label, for the `level` option and for lines that carry
 * their level as a label (`formatters.level`): its own values (pino's when it
 * sent none), each also under its lower-case spelling. A Map, so that no name
 * of Object.prototype (`constructor`, `toString`) passes for a level.
 */
export function levelValues (levels?: PinoConfig['levels']): Map<string, number> {
  const values = levels?.values ?? Object.fromEntries(Object.entries(DEFAULT_LABELS).map(([n, label]) => [label, Number(n)]))
  const map = new Map<string, number>()
  for (const [label, n] of Object.entries(values)) {
    map.set(label, n)
    if (!map.has(label.toLowerCase())) map.set(label.toLowerCase(), n)
  }
  return map
}

/** Numeric value of a level label ('warn', 'WARN', or a custom level of the logger). */
export function levelNumber (level: string | number, pino: PinoConfig = {}): number | undefined {
  if (typeof level === 'number') return level
  const values = levelValues(pino.levels)
  return values.get(level) ?? values.get(level.toLowerCase())
}

/**
 * The line that stands in a workflow's log for lines left out because its
 * rows could not hold them (maxRows), e.g. `… 1,234 lines omitted …`.
 */
export function omittedLine (lines: number): string {
  return `… ${String(lines).replace(/\B(?=(\d{3})+(?!\d))/g, ',')} ${lines === 1 ? 'line' : 'lines'} omitted …`
}

/** Splits a template like '{time} {level} {msg}' into literals and fields. */
export function compile (template: string): Part[] {
  const parts: Part[] = []
  const re = /\{([^{}\s]+)\}/g
  let last = 0
  for (let m = re.exec(template); m !== null; m = re.exec(template)) {
    if (m.index > last) parts.push({ literal: template.slice(last, m.index) })
    const field = m[1] as string
    parts.push({ field, path: field.split('.') })
    last = re.lastIndex
  }
  if (last < template.length) parts.push({ literal: template.slice(last) })
  return parts
}
