import { Bitrix24TransportError, ERR_UNKNOWN_OPTION } from './errors'
import { nearest } from './nearest'
import { OPTION_NAMES } from './option-table'
import { PREFIX } from './prefix'
import { hidden, looksSecret } from './redact'
import { oneLine } from './reporter'

// What pino and thread-stream add to a target's options on their way into the
// worker: `$context` (and any other `$` name), `pinoWillSendConfig`, and the
// `levels` and `dedupe` of pino.transport() itself.
const FROM_PINO = new Set(['pinoWillSendConfig', 'levels', 'dedupe'])
const KNOWN = new Set<string>(OPTION_NAMES)

/** The names of `input` that are no option and not put there by pino. */
export function unknownNames (input: unknown): string[] {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return []
  return Object.keys(input).filter((name) => !KNOWN.has(name) && !FROM_PINO.has(name) && !name.startsWith('$'))
}

/** `"flushIntervall" (did you mean "flushInterval"?)`: a name as given, shown safely, and its nearest option. */
function unknownText (name: string): string {
  const shown = looksSecret(name) ? hidden(name) : oneLine(JSON.stringify(name.length > 40 ? name.slice(0, 40) + '…' : name))
  const near = nearest(name, OPTION_NAMES, (n) => n.toLowerCase())
  return near === undefined ? shown : `${shown} (did you mean "${near}"?)`
}

/**
 * The error for options with names no option has, or undefined. A typo would
 * otherwise be ignored in silence and its default apply: `levle: 'warn'` would
 * let every info line into a log that keeps only 50 rows.
 */
export function unknownOptionsError (input: unknown): Bitrix24TransportError | undefined {
  const names = unknownNames(input)
  if (names.length === 0) return undefined
  const listed = names.slice(0, 3).map(unknownText).join(', ') + (names.length > 3 ? ` and ${names.length - 3} more` : '')
  return new Bitrix24TransportError(ERR_UNKNOWN_OPTION, `${PREFIX}unknown option${names.length > 1 ? 's' : ''} ${listed}`, names[0])
}

/** The options without the unknown names (the worker goes on with the rest). */
export function withoutUnknown (input: unknown): unknown {
  const names = unknownNames(input)
  if (names.length === 0) return input
  const known: Record<string, unknown> = { ...(input as Record<string, unknown>) }
  for (const name of names) delete known[name]
  return known
}
