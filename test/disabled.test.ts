import t from 'tap'
import { Discard, disabledLine } from '../lib/disabled'
import { Bitrix24TransportError, ERR_INVALID_OPTION, ERR_MISSING_API_KEY } from '../lib/errors'
import { createStats } from '../lib/stats'

t.test('the line: code, what is wrong (naming the option or env variable) and the fix, in 200 characters', async (t) => {
  t.equal(disabledLine(new Bitrix24TransportError(ERR_MISSING_API_KEY, 'pino-bitrix24-workflow: no key', 'apiKey')),
    'pino-bitrix24-workflow: ERR_BITRIX24_MISSING_API_KEY: no API key: set env BITRIX24_API_KEY or option "apiKey"; transport disabled, the app and its other targets go on\n')
  t.equal(disabledLine(new Bitrix24TransportError(ERR_INVALID_OPTION, 'pino-bitrix24-workflow: option "flushInterval" must be an integer from 0 to 3600000, got -1', 'flushInterval')),
    'pino-bitrix24-workflow: ERR_BITRIX24_INVALID_OPTION: option "flushInterval" must be an integer from 0 to 3600000, got -1; transport disabled, the app and its other targets go on\n')
  const long = disabledLine(new Bitrix24TransportError(ERR_INVALID_OPTION, 'pino-bitrix24-workflow: ' + 'x'.repeat(500), 'flushInterval'))
  t.equal(long.length, 201, 'cut to 200 characters and the newline')
  t.match(long, /x…; transport disabled, the app and its other targets go on\n$/, 'the consequence stays whole')
  const given = disabledLine(new Bitrix24TransportError(ERR_INVALID_OPTION, 'pino-bitrix24-workflow: option "proxy" must be ' + 'y'.repeat(300) + ', got "http://…@127.0.0.1:3128/"', 'proxy'))
  t.equal(given.length, 201)
  t.match(given, /^pino-bitrix24-workflow: ERR_BITRIX24_INVALID_OPTION: option "proxy" must be y+…, got "http:\/\/…@127\.0\.0\.1:3128\/"; transport disabled/, 'what was given stays; what was expected is cut')
})

t.test('an error that names no option (one no check foresaw) still makes a sensible, clean line', async (t) => {
  const line = disabledLine(Object.assign(new URIError('URI malformed\u001b[2J\nforged'), {}))
  t.equal(line, 'pino-bitrix24-workflow: URIError: URI malformed forged; transport disabled, the app and its other targets go on\n')
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
