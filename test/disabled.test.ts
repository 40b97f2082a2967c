import t from 'tap'
import { Discard, disabledLine } from '../lib/disabled'
import { Bitrix24TransportError, ERR_INVALID_OPTION, ERR_MISSING_API_KEY } from '../lib/errors'
import { createStats } from '../lib/stats'

const TAIL = ' To stop the app instead, check the options with parseOptions() in the main thread before pino.transport().\n'

t.test('the line: code, what is wrong, the option or env variable, and the fix', async (t) => {
  t.equal(disabledLine(new Bitrix24TransportError(ERR_MISSING_API_KEY, 'pino-bitrix24-workflow: no key', 'apiKey')),
    'pino-bitrix24-workflow: ERR_BITRIX24_MISSING_API_KEY: no key. This transport is disabled and discards its lines; the app and its other targets go on. ' +
    'To fix: set option "apiKey" or env BITRIX24_API_KEY.' + TAIL)
  t.match(disabledLine(new Bitrix24TransportError(ERR_INVALID_OPTION, 'pino-bitrix24-workflow: bad', 'timeZone', 'BITRIX24_TIME_ZONE')), /: bad\. .* To fix: correct option "timeZone" \(or env BITRIX24_TIME_ZONE\)\./)
  t.match(disabledLine(new Bitrix24TransportError(ERR_INVALID_OPTION, 'pino-bitrix24-workflow: bad', 'flushInterval')), /To fix: correct option "flushInterval"\./)
})

t.test('an error that names no option (one no check foresaw) still makes a sensible, clean line', async (t) => {
  const line = disabledLine(Object.assign(new URIError('URI malformed\u001b[2J\nforged'), {}))
  t.equal(line, 'pino-bitrix24-workflow: URIError: URI malformed forged. This transport is disabled and discards its lines; the app and its other targets go on. ' +
    'To fix: correct the options.' + TAIL)
  t.notMatch(line, /undefined/)
})

t.test('Discard counts every line as received and dropped (disabled), and raises the drop event for each', async (t) => {
  const stats = createStats()
  const events: unknown[] = []
  const sink = new Discard(stats, (name, payload) => { events.push([name, payload]) }, ERR_MISSING_API_KEY)
  sink.line()
  sink.line()
  t.match(stats, { received: 2, dropped: { disabled: 2 } })
  t.same(events, Array.from({ length: 2 }, () => ['bitrix24:drop', { reason: 'disabled', lines: 1, token: '', code: 'ERR_BITRIX24_MISSING_API_KEY' }]))
})
