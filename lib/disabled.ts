import { type Bitrix24TransportError, ERR_MISSING_API_KEY, ERR_MISSING_PACKAGE } from './errors'
import { OPTIONS } from './option-table'
import { oneLine } from './reporter'
import type { Stats } from './stats'

/**
 * A transport whose configuration is invalid, inside pino's worker. There a
 * rejected factory is an unhandled 'error' that takes the whole application,
 * and every other target of `pino.transport({ targets })`, down with it: a
 * missing key on a laptop or in CI must not cost the app its stdout logging.
 * So the transport says once what is wrong and discards its lines instead.
 */

const PREFIX = 'pino-bitrix24-workflow: '

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
    : err.code === ERR_MISSING_PACKAGE
      ? 'install the package it names, or unset option "spoolDir" (and env BITRIX24_SPOOL_DIR)'
      : option === undefined ? 'correct the options' : `correct option "${option}"${env === undefined ? '' : ` (or env ${env})`}`
  return `${PREFIX}${err.code ?? err.name}: ${what}. This transport is disabled and discards its lines; the app and its other targets go on. ` +
    `To fix: ${fix}. To stop the app instead, check the options with parseOptions() in the main thread before pino.transport().\n`
}

/** Counts every line as dropped for reason `disabled`: nothing is parsed, nothing is sent. */
export class Discard {
  private readonly stats: Stats

  constructor (stats: Stats) {
    this.stats = stats
  }

  line (): void {
    this.stats.received++
    this.stats.dropped.disabled++
  }
}
