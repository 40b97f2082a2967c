import { type Bitrix24TransportError, ERR_MISSING_API_KEY } from './errors'
import type { Emit } from './events'
import { OPTIONS } from './option-table'
import { MAX_LINE_LENGTH, oneLine } from './reporter'
import type { Stats } from './stats'
import { PREFIX } from './prefix'

/**
 * A transport whose configuration is invalid, inside pino's worker. There a
 * rejected factory is an unhandled 'error' that takes the whole application,
 * and every other target of `pino.transport({ targets })`, down with it: a
 * missing key on a laptop or in CI must not cost the app its stdout logging.
 * So the transport says once what is wrong and discards its lines instead.
 */

/**
 * The one stderr line, at most 200 characters: the code, what is wrong (naming
 * the option or env variable) and the fix; the README says more under the code
 * (how to fail fast instead, with parseOptions()).
 */
export function disabledLine (err: Error & Partial<Pick<Bitrix24TransportError, 'code' | 'option' | 'env'>>): string {
  const code = err.code ?? err.name
  const consequence = '; transport disabled, the app and its other targets go on'
  if (err.code === ERR_MISSING_API_KEY) return `${PREFIX}${code}: no API key: set env ${OPTIONS.apiKey.env} or option "apiKey"${consequence}\n`
  // One line, whatever an error no check foresaw (one of a library, say) may say; cut to fit,
  // in the middle: what was expected may be cut, what was given stays (it is short, see describe()).
  const room = MAX_LINE_LENGTH - PREFIX.length - code.length - 2 - consequence.length
  const message = oneLine(err.message.replace(PREFIX, ''), Infinity)
  const at = message.lastIndexOf(', got ')
  const given = at === -1 || message.length <= room ? '' : message.slice(at)
  return `${PREFIX}${code}: ${oneLine(given === '' ? message : message.slice(0, at), room - given.length)}${given}${consequence}\n`
}

/**
 * Counts every line as dropped for reason `disabled` and raises the drop event,
 * as every other reason does: nothing is parsed, so the event names no token,
 * and its code is the configuration error's.
 */
export class Discard {
  private readonly stats: Stats
  private readonly emit: Emit
  private readonly code: string

  constructor (stats: Stats, emit: Emit, code: string) {
    this.stats = stats
    this.emit = emit
    this.code = code
  }

  line (): void {
    this.stats.received++
    this.stats.dropped.disabled++
    this.emit('bitrix24:drop', { reason: 'disabled', lines: 1, token: '', code: this.code })
  }
}
