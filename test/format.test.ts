import t from 'tap'
import { DEFAULT_LABELS, Formatter, compile, epochMs, levelNumber, omittedLine } from '../lib/format'
import type { FormatOptions, PinoConfig } from '../lib/format'

// Times are built from local components, so the expected HH:MM:SS holds in any time zone.
const T = new Date(2025, 0, 15, 12, 3, 4, 250).getTime()

const OPTIONS: FormatOptions = {
  messageFormat: '{time} {level} {msg}',
  include: undefined,
  exclude: [],
  tokenKey: 'eventToken',
  eventKey: 'workflowEvent',
  errorStackFrames: 0
}

function formatter (opts: Partial<FormatOptions> = {}, pino?: PinoConfig): Formatter {
  return new Formatter({ ...OPTIONS, ...opts }, pino)
}

function line (fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { level: 30, time: T, pid: 4242, hostname: 'worker-7', eventToken: 'tok_123', msg: 'Rows parsed', ...fields }
}

t.test('the default template', async (t) => {
  t.equal(formatter().format(line({ rows: 120 })), '12:03:04 INFO Rows parsed rows=120')
})

t.test('time is local HH:MM:SS, zero-padded', async (t) => {
  const early = new Date(2025, 5, 1, 9, 5, 7).getTime()
  t.equal(formatter().format(line({ time: early })), '09:05:07 INFO Rows parsed')
  const midnight = new Date(2025, 5, 1, 0, 0, 0).getTime()
  t.equal(formatter().format(line({ time: midnight })), '00:00:00 INFO Rows parsed')
})

t.test('lines of one second share the clock text; a new second gets its own', async (t) => {
  const f = formatter({ messageFormat: '{time}' })
  t.equal(f.format({ time: T }), '12:03:04')
  t.equal(f.format({ time: T + 700 }), '12:03:04', 'same second')
  t.equal(f.format({ time: T + 750 }), '12:03:05', 'next second')
  t.equal(f.format({ time: T - 1000 }), '12:03:03', 'going back')
  t.equal(f.format({ time: T + 3_600_000 }), '13:03:04', 'an hour later')
})

t.test('time given as an ISO string', async (t) => {
  const iso = new Date(T).toISOString()
  t.equal(formatter().format(line({ time: iso })), '12:03:04 INFO Rows parsed')
})

t.test('a time string that is not a date is shown as given', async (t) => {
  t.equal(formatter().format(line({ time: 'yesterday' })), 'yesterday INFO Rows parsed')
})

t.test('time missing, or of another type, leaves no gap', async (t) => {
  t.equal(formatter().format(line({ time: undefined })), 'INFO Rows parsed')
  t.equal(formatter().format(line({ time: { at: 1 } })), 'INFO Rows parsed')
  t.equal(formatter().format(line({ time: Infinity })), 'INFO Rows parsed', 'a number that is not finite')
})

t.test('every time pino can write: epoch ms, unix seconds, ISO strings, numbers as strings', async (t) => {
  const ms = 1_736_942_584_250 // 2025-01-15T12:03:04.250Z
  const f = formatter({ messageFormat: '{time}', timeZone: 'UTC' })
  t.equal(f.format({ time: ms }), '12:03:04', 'epochTime (the default): ms')
  t.equal(f.format({ time: Math.round(ms / 1000) }), '12:03:04', 'unixTime: seconds')
  t.equal(f.format({ time: ms / 1000 }), '12:03:04', 'seconds with a fraction')
  t.equal(f.format({ time: new Date(ms).toISOString() }), '12:03:04', 'isoTime')
  t.equal(f.format({ time: '2025-01-15T12:03:04.250123456Z' }), '12:03:04', 'isoTimeNano')
  t.equal(f.format({ time: '2025-01-15T15:03:04.250+03:00' }), '12:03:04', 'an ISO string with an offset')
  t.equal(f.format({ time: String(ms) }), '12:03:04', 'ms as a string')
  t.equal(f.format({ time: '1736942584' }), '12:03:04', 'seconds as a string')
  t.equal(f.format({ time: ms * 1000 }), '12:03:04', 'microseconds')
  t.equal(f.format({ time: ms * 1e6 }), '12:03:04', 'nanoseconds')
  t.equal(f.format({ time: 0 }), '00:00:00', 'the epoch itself')
  for (const time of [NaN, -Infinity, 'soon', '', null, true]) {
    t.notMatch(f.format({ time, msg: 'x' }), /NaN/, `never NaN: ${String(time)}`)
  }
  t.ok(Number.isNaN(epochMs(Infinity)))
  t.ok(Number.isNaN(epochMs({})))
  t.equal(epochMs(1700000000), 1700000000000)
})

t.test('timeZone renders the time in that zone', async (t) => {
  const ms = Date.UTC(2025, 0, 15, 23, 30, 5)
  t.equal(formatter({ messageFormat: '{time}', timeZone: 'UTC' }).format({ time: ms }), '23:30:05')
  t.equal(formatter({ messageFormat: '{time}', timeZone: 'Europe/Moscow' }).format({ time: ms }), '02:30:05', 'UTC+3, past midnight: 02, never 26')
  t.equal(formatter({ messageFormat: '{time}', timeZone: 'Asia/Kolkata' }).format({ time: ms }), '05:00:05', 'a half-hour offset')
  t.equal(formatter({ messageFormat: '{time}', timeZone: 'America/New_York' }).format({ time: ms }), '18:30:05')
  const summer = Date.UTC(2025, 6, 15, 23, 30, 5)
  t.equal(formatter({ messageFormat: '{time}', timeZone: 'America/New_York' }).format({ time: summer }), '19:30:05', 'daylight saving time')
  t.equal(formatter({ messageFormat: '{time}', timeZone: 'Europe/Berlin' }).format({ time: Date.UTC(2025, 0, 1, 23, 0, 0) }), '00:00:00', 'midnight is 00')
})

t.test('level labels', async (t) => {
  const f = formatter({ messageFormat: '{level}' })
  const labels: Array<[number, string]> = [[10, 'TRACE'], [20, 'DEBUG'], [30, 'INFO'], [40, 'WARN'], [50, 'ERROR'], [60, 'FATAL']]
  for (const [n, label] of labels) t.equal(f.format({ level: n }), label)
  t.equal(f.format({ level: 45 }), '45', 'an unknown number is shown as a number')
})

t.test('level as a string', async (t) => {
  t.equal(formatter().format(line({ level: 'warn' })), '12:03:04 WARN Rows parsed')
})

t.test('level missing or of another type leaves no gap', async (t) => {
  t.equal(formatter().format(line({ level: undefined })), '12:03:04 Rows parsed')
  t.equal(formatter().format(line({ level: true })), '12:03:04 Rows parsed')
})

t.test('msg missing leaves no trailing space', async (t) => {
  t.equal(formatter().format(line({ msg: undefined })), '12:03:04 INFO')
  t.equal(formatter().format(line({ msg: null })), '12:03:04 INFO')
  t.equal(formatter().format(line({ msg: undefined, rows: 1 })), '12:03:04 INFO rows=1', 'fields follow with one space')
})

t.test('msg that is not a string', async (t) => {
  t.equal(formatter().format(line({ msg: 42 })), '12:03:04 INFO 42')
  t.equal(formatter().format(line({ msg: { a: 1 } })), '12:03:04 INFO {"a":1}')
})

t.test('msg strings are shown as written, not quoted', async (t) => {
  t.equal(formatter().format(line({ msg: 'a "quoted" = word' })), '12:03:04 INFO a "quoted" = word')
})

t.test('nothing but fields', async (t) => {
  t.equal(formatter().format({ rows: 1, ok: true }), 'rows=1 ok=true')
  t.equal(formatter().format({}), '')
  t.equal(formatter().format({ pid: 1, hostname: 'h', v: 1 }), '', 'only hidden fields')
})

t.test('pino\'s bookkeeping, the token key and the event key are hidden', async (t) => {
  const out = formatter().format(line({ v: 1, workflowEvent: { done: true }, step: 2 }))
  t.equal(out, '12:03:04 INFO Rows parsed step=2')
})

t.test('custom token and event keys are hidden instead', async (t) => {
  const f = formatter({ tokenKey: 'bpToken', eventKey: 'finish' })
  t.equal(f.format(line({ bpToken: 'x', finish: {} })), '12:03:04 INFO Rows parsed eventToken=tok_123')
})

t.test('the exclude option hides more fields', async (t) => {
  const f = formatter({ exclude: ['secret', 'reqId'] })
  t.equal(f.format(line({ secret: 's', reqId: 7, rows: 3 })), '12:03:04 INFO Rows parsed rows=3')
})

t.test('the include option shows only the listed fields, in line order', async (t) => {
  const f = formatter({ include: ['rows', 'file'] })
  t.equal(f.format(line({ file: 'a.csv', user: 'bob', rows: 3 })), '12:03:04 INFO Rows parsed file=a.csv rows=3')
  t.equal(f.format(line({ user: 'bob' })), '12:03:04 INFO Rows parsed', 'none of them present')
})

t.test('include does not reveal hidden fields', async (t) => {
  const f = formatter({ include: ['pid', 'eventToken', 'rows'], exclude: ['rows'] })
  t.equal(f.format(line({ rows: 3 })), '12:03:04 INFO Rows parsed')
})

t.test('an empty include list shows no fields', async (t) => {
  t.equal(formatter({ include: [] }).format(line({ rows: 3 })), '12:03:04 INFO Rows parsed')
})

t.test('quoting of field values', async (t) => {
  const f = formatter({ messageFormat: '{msg}' })
  const cases: Array<[unknown, string]> = [
    ['plain', 'plain'],
    ['two words', '"two words"'],
    ['a=b', '"a=b"'],
    ['say "hi"', '"say \\"hi\\""'],
    ['C:\\path', '"C:\\\\path"'],
    ['tab\there', '"tab\\there"'],
    ['line\nbreak', '"line\\nbreak"'],
    ['', '""'],
    ['привет', 'привет'],
    ['a,b;c:d/e?', 'a,b;c:d/e?']
  ]
  for (const [v, shown] of cases) t.equal(f.format({ msg: 'm', x: v }), `m x=${shown}`, JSON.stringify(v))
})

t.test('non-string field values', async (t) => {
  const f = formatter({ messageFormat: '{msg}' })
  t.equal(f.format({ msg: 'm', n: 1.5, b: false, z: null }), 'm n=1.5 b=false z=null')
  t.equal(f.format({ msg: 'm', o: { a: 1, b: 'two words' } }), 'm o={"a":1,"b":"two words"}', 'objects as JSON')
  t.equal(f.format({ msg: 'm', a: [1, 'x'] }), 'm a=[1,"x"]', 'arrays as JSON')
  t.equal(f.format({ msg: 'm', u: undefined, n: 1 }), 'm n=1', 'undefined fields are skipped')
})

t.test('err shows Type: message', async (t) => {
  const err = { type: 'TypeError', message: 'bad input', stack: 'TypeError: bad input\n    at parse (/app/parse.js:10:5)\n    at main (/app/main.js:3:1)' }
  t.equal(formatter().format(line({ level: 50, msg: 'failed', err })), '12:03:04 ERROR failed err=TypeError: bad input')
})

t.test('err without a type, or without a message', async (t) => {
  const f = formatter({ messageFormat: '{msg}' })
  t.equal(f.format({ msg: 'm', err: { message: 'boom' } }), 'm err=Error: boom')
  t.equal(f.format({ msg: 'm', err: { type: 'RangeError' } }), 'm err=RangeError')
  t.equal(f.format({ msg: 'm', err: { type: 'RangeError', message: '' } }), 'm err=RangeError')
  t.equal(f.format({ msg: 'm', err: { type: 7, message: 404 } }), 'm err=Error: 404', 'type not a string, message a number')
})

t.test('err that is not an object is shown as a value', async (t) => {
  const f = formatter({ messageFormat: '{msg}' })
  t.equal(f.format({ msg: 'm', err: 'boom' }), 'm err=boom')
  t.equal(f.format({ msg: 'm', err: 'it broke' }), 'm err="it broke"')
  t.equal(f.format({ msg: 'm', err: null }), 'm err=null')
})

t.test('stack frames only with errorStackFrames', async (t) => {
  const err = {
    type: 'Error',
    message: 'no rows',
    stack: 'Error: no rows\n    at parse (/app/parse.js:10:5)\n  at main (/app/main.js:3:1)\n    at node:internal/x:1:1\nnot a frame'
  }
  t.equal(formatter({ messageFormat: '{msg}' }).format({ msg: 'm', err }), 'm err=Error: no rows', 'none by default')
  t.equal(formatter({ messageFormat: '{msg}', errorStackFrames: 1 }).format({ msg: 'm', err }),
    'm err=Error: no rows\n    at parse (/app/parse.js:10:5)')
  t.equal(formatter({ messageFormat: '{msg}', errorStackFrames: 10 }).format({ msg: 'm', err }),
    'm err=Error: no rows\n    at parse (/app/parse.js:10:5)\n    at main (/app/main.js:3:1)\n    at node:internal/x:1:1',
    'all frames, indented alike, other lines left out')
  t.equal(formatter({ messageFormat: '{msg}', errorStackFrames: 3 }).format({ msg: 'm', err: { message: 'x', stack: 42 } }),
    'm err=Error: x', 'a stack that is not a string')
})

t.test('custom levels, messageKey and errorKey from the pino config', async (t) => {
  const pino: PinoConfig = {
    levels: { labels: { 10: 'trace', 30: 'info', 35: 'notice' }, values: { trace: 10, info: 30, notice: 35 } },
    messageKey: 'message',
    errorKey: 'error'
  }
  const f = formatter({}, pino)
  t.equal(f.format({ level: 35, time: T, message: 'Hello', error: { type: 'Error', message: 'x' }, err: { a: 1 } }),
    '12:03:04 NOTICE Hello error=Error: x err={"a":1}')
  t.equal(f.format({ level: 40, time: T, message: 'Hello' }), '12:03:04 40 Hello', 'default labels are not used')
})

t.test('errorStackFrames applies to a custom errorKey, among the fields and in the template', async (t) => {
  const pino: PinoConfig = { errorKey: 'error' }
  const error = { type: 'Error', message: 'x', stack: 'Error: x\n    at a (/a.js:1:1)\n    at b (/b.js:2:2)' }
  t.equal(formatter({ messageFormat: '{msg}', errorStackFrames: 1 }, pino).format({ msg: 'm', error }),
    'm error=Error: x\n    at a (/a.js:1:1)')
  const f = formatter({ messageFormat: '{msg} [{error}]', errorStackFrames: 2 }, pino)
  t.equal(f.format({ msg: 'm', error, rows: 1 }), 'm [Error: x\n    at a (/a.js:1:1)\n    at b (/b.js:2:2)] rows=1', 'named in the template: not repeated')
  t.equal(f.format({ msg: 'm' }), 'm []', 'absent')
  t.equal(f.format({ msg: 'm', error: null }), 'm []', 'null')
  t.equal(f.format({ msg: 'm', error: 'text' }), 'm [text]', 'not an object')
  t.equal(formatter({ messageFormat: '{msg} {err}', errorStackFrames: 1 }).format({ msg: 'm', err: error }),
    'm Error: x\n    at a (/a.js:1:1)', 'the default errorKey alike')
})

t.test('a custom template with {fields} and dotted paths', async (t) => {
  const f = formatter({ messageFormat: '[{req.id}] {level}: {msg} ({fields}) by {user.name}' })
  const out = f.format(line({ req: { id: 'r-1', url: '/x' }, user: { name: 'Анна' }, rows: 3, file: 'a b.csv' }))
  t.equal(out, '[r-1] INFO: Rows parsed (rows=3 file="a b.csv") by Анна', 'path roots are not repeated in fields')
})

t.test('dotted paths that lead nowhere leave no double space', async (t) => {
  const f = formatter({ messageFormat: '{time} {req.id} {msg}' })
  t.equal(f.format(line({})), '12:03:04 Rows parsed', 'root missing')
  t.equal(f.format(line({ req: 'text' })), '12:03:04 Rows parsed', 'root not an object')
  t.equal(f.format(line({ req: null })), '12:03:04 Rows parsed', 'root null')
  t.equal(f.format(line({ req: {} })), '12:03:04 Rows parsed', 'leaf missing')
  t.equal(f.format(line({ req: { id: null } })), '12:03:04 Rows parsed', 'leaf null')
  t.equal(f.format(line({ req: { id: 7 } })), '12:03:04 7 Rows parsed', 'a number leaf')
  t.equal(f.format(line({ req: { id: { a: 'b c' } } })), '12:03:04 {"a":"b c"} Rows parsed', 'an object leaf as JSON')
  t.equal(f.format(line({ req: { id: 'two words' } })), '12:03:04 two words Rows parsed', 'a string leaf as written')
})

t.test('a plain field placeholder', async (t) => {
  const f = formatter({ messageFormat: '{level} {step} {msg}' })
  t.equal(f.format(line({ step: 'load', rows: 1 })), 'INFO load Rows parsed rows=1')
  t.equal(f.format(line({ rows: 1 })), 'INFO Rows parsed rows=1')
})

t.test('every placeholder missing', async (t) => {
  const f = formatter({ messageFormat: '{time} {level} {msg} {fields}' })
  t.equal(f.format({}), '')
  t.equal(f.format({ a: 1 }), 'a=1')
})

t.test('{fields} with no fields leaves no trailing space', async (t) => {
  t.equal(formatter({ messageFormat: '{level} {msg} {fields}' }).format(line({})), 'INFO Rows parsed')
})

t.test('fields are appended with one space after any template', async (t) => {
  t.equal(formatter({ messageFormat: 'LOG:' }).format({ a: 1 }), 'LOG: a=1', 'after a literal')
  t.equal(formatter({ messageFormat: '{msg} ' }).format({ msg: 'm', a: 1 }), 'm a=1', 'after a trailing space')
  t.equal(formatter({ messageFormat: '{msg}' }).format({ a: 1 }), 'a=1', 'after nothing')
  t.equal(formatter({ messageFormat: '{msg}' }).format({ '': 'x', a: 1 }), '=x a=1', 'an empty key (JSON allows one) starts with its =')
})

t.test('the line is trimmed where its fields start or end with white space', async (t) => {
  t.equal(formatter({ messageFormat: '{msg}' }).format({ ' k': 1 }), 'k=1', 'a key starting with a space, alone')
  t.equal(formatter().format(line({ msg: 'm', err: { type: 'E', message: 'boom\n' } })), '12:03:04 INFO m err=E: boom', 'an error message ending in a newline')
  t.equal(formatter({ messageFormat: '{msg}' }).format({ msg: ' m ', a: 1 }), 'm a=1', 'a message with spaces around it: the one after it separates the fields')
  t.equal(formatter({ messageFormat: '{msg}' }).format({ msg: 'm\u0001' }), 'm\u0001', 'a control character is no white space: nothing to trim')
})

t.test('levelNumber', async (t) => {
  t.equal(levelNumber(35), 35, 'a number is itself')
  t.equal(levelNumber('warn'), 40, 'a default label')
  t.equal(levelNumber('WARN'), 40, 'in any case')
  t.equal(levelNumber('fatal'), 60)
  t.equal(levelNumber('notice'), undefined, 'unknown label')
  const pino: PinoConfig = { levels: { values: { info: 30, notice: 35, Loud: 70 } } }
  t.equal(levelNumber('notice', pino), 35, 'a custom level')
  t.equal(levelNumber('NOTICE', pino), 35, 'a custom level in upper case')
  t.equal(levelNumber('Loud', pino), 70, 'a custom level written with capitals')
  t.equal(levelNumber('warn', pino), undefined, 'the logger\'s own levels replace the defaults')
  t.equal(levelNumber(10, pino), 10)
  t.equal(levelNumber('info', { levels: { labels: { 30: 'info' } } }), 30, 'labels without values: defaults')
  // The logger's values are a plain object: its prototype's names are no levels.
  for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    t.equal(levelNumber(name, pino), undefined, `${name} is no level of the logger`)
  }
  t.equal(levelNumber('loud', pino), 70, 'a custom label with capitals, named in lower case, as the router reads lines')
})

t.test('DEFAULT_LABELS are pino\'s', async (t) => {
  t.same(DEFAULT_LABELS, { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' })
})

t.test('compile splits a template into literals and fields', async (t) => {
  t.same(compile('{time} {level} {msg}'), [
    { field: 'time', path: ['time'] },
    { literal: ' ' },
    { field: 'level', path: ['level'] },
    { literal: ' ' },
    { field: 'msg', path: ['msg'] }
  ])
  t.same(compile('>> {req.id}{msg} <<'), [
    { literal: '>> ' },
    { field: 'req.id', path: ['req', 'id'] },
    { field: 'msg', path: ['msg'] },
    { literal: ' <<' }
  ])
  t.same(compile('no fields here'), [{ literal: 'no fields here' }])
  t.same(compile('{} { msg } {{x}}'), [{ literal: '{} { msg } {' }, { field: 'x', path: ['x'] }, { literal: '}' }],
    'empty braces and spaced names are literal')
  t.same(compile(''), [])
})

t.test('literal braces in the template are kept', async (t) => {
  t.equal(formatter({ messageFormat: '{msg} {}' }).format({ msg: 'm' }), 'm {}')
})

t.test('a time beyond what a Date holds leaves no gap, never NaN:NaN:NaN', async (t) => {
  // Numbers this large are read as nanoseconds (see epochMs); past even that a Date cannot hold them.
  t.equal(formatter().format(line({ time: 1e25 })), 'INFO Rows parsed')
  t.equal(formatter().format(line({ time: -1e25 })), 'INFO Rows parsed')
  t.notMatch(formatter().format(line({ time: 1e20 })), /NaN/, '1e20 ns is a time')
  t.notMatch(formatter().format(line({ time: 8.64e15 })), /NaN/, 'the last moment a Date holds is a time')
})

t.test('placeholders read own fields only, never Object.prototype', async (t) => {
  const f = formatter({ messageFormat: '{msg} {constructor} {toString} {a.constructor} {a.hasOwnProperty} {__proto__}' })
  t.equal(f.format(JSON.parse('{"msg":"m","a":{}}')), 'm')
  t.equal(f.format(JSON.parse('{"msg":"m","constructor":"own","a":{"constructor":1}}')), 'm own 1', 'own fields of those names are shown')
  t.equal(f.format(JSON.parse('{"msg":"m","__proto__":{"x":1}}')), 'm {"x":1}', 'a JSON __proto__ key is an own field')
})

t.test('the marker of lines left out groups thousands and says line or lines', async (t) => {
  t.equal(omittedLine(1), '… 1 line omitted …')
  t.equal(omittedLine(999), '… 999 lines omitted …')
  t.equal(omittedLine(1234), '… 1,234 lines omitted …')
  t.equal(omittedLine(1234567), '… 1,234,567 lines omitted …')
})
