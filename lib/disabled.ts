import { type Bitrix24TransportError, ERR_MISSING_API_KEY } from './errors'
import type { Emit } from './events'
import { OPTIONS } from './option-table'
import { oneLine } from './reporter'
import type { Stats } from './stats'
import { PREFIX } from './prefix'

/**
 * A transport whose configuration is invalid, inside pino's worker. There a
 * rejected factory is an unhandled 'error' that takes the whole application,
 * and every other target of `pino.transport({ targets })`, down with it: a
 * missing key on a laptop or in CI must not cost the app its stdout logging.
 * So the transport says once what is wrong and discards its lines instead.
 */

/** The one stderr line: the code, what is wrong (naming the option or env variable), and what to do. */
export function disabledLine (err: Error & Partial<Pick<Bitrix24TransportError, 'code' | 'option' | 'env'>>): string {
  // One line, whatever an error no check foresaw (one of a library, say) may say.
  const what = oneLine(err.message.replace(PREFIX, ''))
  // Every error of option validation names its option.
  const option = err.option
  // The variable the bad value came from, else the one the option falls back to: the fix may be there.
  const env = err.env ?? (option === undefined ? undefined : (OPTIONS as Readonly<Record<string, { env?: string }>>)[option]?.env)
  const fix = err.code === ERR_MISSING_API_KEY
    ? `set option "apiKey" or env ${env as string}`
    : option === undefined ? 'correct the options' : `correct option "${option}"${env === undefined ? '' : ` (or env ${env})`}`
  return `${PREFIX}${err.code ?? err.name}: ${what}. This transport is disabled and discards its lines; the app and its other targets go on. ` +
    `To fix: ${fix}. To stop the app instead, check the options with parseOptions() in the main thread before pino.transport().\n`
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
