import t from 'tap'
import type { Test } from 'tap'
import { DEFAULT_BASE_URL, defaults, describe, parseOptions } from '../lib/options'
import type { Config } from '../lib/options'
import {
  Bitrix24TransportError,
  ERR_INSECURE_BASE_URL,
  ERR_INVALID_OPTION,
  ERR_MISSING_API_KEY
} from '../lib/errors'
import type { ErrorCode } from '../lib/errors'

const KEY = 'vibe_api_0123456789abcdef'
const SESSION = 'session_0123456789abcdef'
const NO_ENV = {}

function caught (fn: () => unknown): Bitrix24TransportError {
  try {
    fn()
  } catch (err) {
    return err as Bitrix24TransportError
  }
  throw new Error('expected a throw')
}

interface Expected {
  code?: ErrorCode
  option: string
  expected: string
  given: string
  /** The environment variable the value came from. */
  env?: string
}

// Every invalid option: a Bitrix24TransportError with a code, the option, and a
// message naming option, expectation and what was given.
function rejects (t: Test, input: unknown, want: Expected, env: NodeJS.ProcessEnv = NO_ENV): Bitrix24TransportError {
  const err = caught(() => parseOptions(input, env))
  const label = `${want.option} = ${want.given}`
  t.type(err, Bitrix24TransportError, `${label}: a Bitrix24TransportError`)
  t.type(err, Error, `${label}: an Error`)
  t.equal(err.name, 'Bitrix24TransportError', `${label}: name`)
  t.equal(err.code, want.code ?? ERR_INVALID_OPTION, `${label}: code`)
  t.equal(err.option, want.option, `${label}: option`)
  t.equal(err.env, want.env, `${label}: env`)
  const subject = want.env === undefined ? `option "${want.option}"` : `env ${want.env} (option "${want.option}")`
  t.equal(err.message, `pino-bitrix24-workflow: ${subject} must be ${want.expected}, got ${want.given}`, `${label}: message`)
  return err
}

t.test('defaults', async (t) => {
  const config = parseOptions({ apiKey: KEY }, NO_ENV)
  const expected: Config = {
    apiKey: KEY,
    sessionToken: undefined,
    baseUrl: DEFAULT_BASE_URL,
    tokenKey: 'eventToken',
    eventKey: 'workflowEvent',
    flushInterval: 2000,
    maxEntryBytes: 16384,
    maxRows: 40,
    concurrency: 4,
    requestTimeout: 10000,
    closeTimeout: 5000,
    messageFormat: '{time} {level} {msg}',
    include: undefined,
    exclude: [],
    level: undefined,
    errorStackFrames: 0,
    keepNonBmp: false,
    onRateLimit: 'buffer',
    maxRequestsPerSecond: 2,
    burst: 5,
    maxRetries: 5,
    maxRetryDelay: 30000,
    retryAmbiguous: true,
    maxBufferedBytes: 8 * 1024 * 1024,
    maxTokens: 10000,
    statsInterval: 0,
    proxy: undefined,
    redisUrl: undefined,
    timeZone: undefined,
    spoolDir: undefined,
    spoolMaxBytes: 67108864,
    spoolMaxAge: 86400000,
    quiet: false
  }
  t.strictSame(config, expected)
  t.equal(DEFAULT_BASE_URL, 'https://vibecode.bitrix24.tech')
  for (const [name, value] of Object.entries(defaults)) {
    t.same(config[name as keyof Config], value, `defaults.${name} is what an unset option becomes`)
  }
})

t.test('every option can be set', async (t) => {
  const input = {
    apiKey: 'vibe_app_key',
    sessionToken: SESSION,
    baseUrl: 'https://proxy.example.com/vibe',
    tokenKey: 'bpToken',
    eventKey: 'bpDone',
    flushInterval: 0,
    maxEntryBytes: 65535,
    maxRows: 7,
    concurrency: 256,
    requestTimeout: 100,
    closeTimeout: 9000,
    messageFormat: '{msg}',
    include: ['rows'],
    exclude: ['secret'],
    level: 'warn',
    errorStackFrames: 100,
    keepNonBmp: true,
    onRateLimit: 'drop' as const,
    maxRequestsPerSecond: 0.5,
    burst: 1,
    maxRetries: 0,
    maxRetryDelay: 1,
    retryAmbiguous: false,
    maxBufferedBytes: 65536,
    maxTokens: 1,
    statsInterval: 60000,
    proxy: 'http://user:pass@proxy.example.com:3128',
    redisUrl: 'rediss://:pass@redis.example.com:6380/2',
    timeZone: 'Europe/Berlin',
    spoolDir: '/var/lib/app/spool',
    spoolMaxBytes: 65536,
    spoolMaxAge: 1000,
    quiet: true
  }
  t.strictSame(parseOptions(input, NO_ENV), input)
})

t.test('options must be an object', async (t) => {
  rejects(t, null, { option: 'options', expected: 'an object', given: 'null' })
  rejects(t, 'vibe_api_x', { option: 'options', expected: 'an object', given: 'a string of 10 characters' })
  rejects(t, 42, { option: 'options', expected: 'an object', given: 'a value of type number' })
  rejects(t, [], { option: 'options', expected: 'an object', given: 'an array' })
})

t.test('no options at all: the API key must come from the environment', async (t) => {
  t.equal(parseOptions(undefined, { BITRIX24_API_KEY: KEY }).apiKey, KEY)
  rejects(t, undefined, { code: ERR_MISSING_API_KEY, option: 'apiKey', expected: 'a Vibe API key (or env BITRIX24_API_KEY)', given: 'nothing' })
})

t.test('a missing API key', async (t) => {
  const missing = { code: ERR_MISSING_API_KEY, option: 'apiKey', expected: 'a Vibe API key (or env BITRIX24_API_KEY)', given: 'nothing' } as const
  rejects(t, {}, missing)
  rejects(t, { apiKey: '' }, missing, { BITRIX24_API_KEY: '' })
  rejects(t, { apiKey: undefined }, missing, { OTHER: 'x' })
})

t.test('env fallbacks', async (t) => {
  const env = { BITRIX24_API_KEY: 'vibe_app_from_env', BITRIX24_SESSION_TOKEN: 'session_from_env', BITRIX24_BASE_URL: 'https://env.example.com/api/' }
  const fromEnv = parseOptions({}, env)
  t.equal(fromEnv.apiKey, 'vibe_app_from_env')
  t.equal(fromEnv.sessionToken, 'session_from_env')
  t.equal(fromEnv.baseUrl, 'https://env.example.com/api', 'env baseUrl is validated and normalised too')

  const given = parseOptions({ apiKey: KEY, sessionToken: SESSION, baseUrl: 'https://option.example.com' }, env)
  t.equal(given.apiKey, KEY, 'an option wins over env')
  t.equal(given.sessionToken, SESSION)
  t.equal(given.baseUrl, 'https://option.example.com')

  const empty = parseOptions({ apiKey: '', sessionToken: '' }, env)
  t.equal(empty.apiKey, 'vibe_app_from_env', 'an empty option falls back to env')
  t.equal(empty.sessionToken, 'session_from_env')

  const blankEnv = parseOptions({ apiKey: KEY }, { BITRIX24_SESSION_TOKEN: '', BITRIX24_BASE_URL: '' })
  t.equal(blankEnv.sessionToken, undefined, 'an empty env session token is none')
  t.equal(blankEnv.baseUrl, DEFAULT_BASE_URL, 'an empty env base URL is the default')
})

t.test('process.env is the default environment', async (t) => {
  const saved = { ...process.env }
  t.teardown(() => {
    for (const name of ['BITRIX24_API_KEY', 'BITRIX24_SESSION_TOKEN', 'BITRIX24_BASE_URL']) {
      if (saved[name] === undefined) delete process.env[name]
      else process.env[name] = saved[name]
    }
  })
  process.env.BITRIX24_API_KEY = 'vibe_api_process_env'
  process.env.BITRIX24_SESSION_TOKEN = 'session_process_env'
  process.env.BITRIX24_BASE_URL = 'http://127.0.0.1:9999'
  const config = parseOptions({})
  t.equal(config.apiKey, 'vibe_api_process_env')
  t.equal(config.sessionToken, 'session_process_env')
  t.equal(config.baseUrl, 'http://127.0.0.1:9999')
})

t.test('secrets are never echoed in errors', async (t) => {
  const cases: Array<[string, string]> = [
    ['vibe_api_0123456789abcdef\n', 'a trailing newline'],
    ['vibe_api_0123456789abcdef\r\n', 'a trailing CRLF'],
    ['vibe_api_0123\t456789abcdef', 'a tab'],
    ['vibe_api_0123\u0000456789abcdef', 'a NUL'],
    ['vibe_api_0123456789abcdef\u007f', 'a DEL'],
    [' vibe_api_0123456789abcdef\u001b', 'an ESC']
  ]
  for (const [value, name] of cases) {
    for (const [option, env] of [['apiKey', 'BITRIX24_API_KEY'], ['sessionToken', 'BITRIX24_SESSION_TOKEN']]) {
      const input = option === 'apiKey' ? { apiKey: value } : { apiKey: KEY, sessionToken: value }
      const err = rejects(t, input, {
        option,
        expected: `a string of printable ASCII characters without spaces (or env ${env})`,
        given: `a string of ${value.length} characters`
      })
      t.notOk(err.message.includes(value), `${option} with ${name}: the value is not in the message`)
      t.notOk(err.message.includes('0123'), `${option} with ${name}: not even part of it`)
      t.notOk(String(err.stack).includes('0123'), `${option} with ${name}: nor in the stack`)

      // The same value from the environment.
      const fromEnv = rejects(t, option === 'apiKey' ? {} : { apiKey: KEY }, {
        option,
        env,
        expected: 'a string of printable ASCII characters without spaces',
        given: `a string of ${value.length} characters`
      }, { [env]: value })
      t.notOk(fromEnv.message.includes('0123'), `env ${env} with ${name}: the value is not in the message`)
    }
  }
})

t.test('secrets of the wrong type are described by type only', async (t) => {
  for (const option of ['apiKey', 'sessionToken']) {
    const env = option === 'apiKey' ? 'BITRIX24_API_KEY' : 'BITRIX24_SESSION_TOKEN'
    const expected = `a string of printable ASCII characters without spaces (or env ${env})`
    const base = option === 'apiKey' ? {} : { apiKey: KEY }
    const err = rejects(t, { ...base, [option]: 1234567890 }, { option, expected, given: 'a value of type number' })
    t.notOk(err.message.includes('1234567890'), `${option}: a numeric secret is not echoed`)
    rejects(t, { ...base, [option]: true }, { option, expected, given: 'a value of type boolean' })
    rejects(t, { ...base, [option]: { key: 'vibe_api_x' } }, { option, expected, given: 'a value of type object' })
    rejects(t, { ...base, [option]: ['vibe_api_x'] }, { option, expected, given: 'an array' })
    rejects(t, { ...base, [option]: null }, { option, expected, given: 'null' })
  }
})

t.test('an invalid option value in the environment is not reached when the option is given', async (t) => {
  const config = parseOptions({ apiKey: KEY, sessionToken: SESSION }, { BITRIX24_API_KEY: 'bad\n', BITRIX24_SESSION_TOKEN: 'bad\n' })
  t.equal(config.apiKey, KEY)
  t.equal(config.sessionToken, SESSION)
})

t.test('keys must be sendable in a header: printable ASCII, no spaces', async (t) => {
  t.equal(parseOptions({ apiKey: 'vibe_api_x-1.2~' }, NO_ENV).apiKey, 'vibe_api_x-1.2~')
  for (const key of ['  vibe_api_x  ', 'vibe_api_\u200bx', 'vibe_api_ключ']) {
    const err = caught(() => parseOptions({ apiKey: key }, NO_ENV))
    t.equal(err.option, 'apiKey')
    t.notOk(err.message.includes(key), 'never echoed')
  }
})

t.test('baseUrl: https', async (t) => {
  const cases: Array<[string, string]> = [
    ['https://vibecode.bitrix24.tech', 'https://vibecode.bitrix24.tech'],
    ['https://vibecode.bitrix24.tech/', 'https://vibecode.bitrix24.tech'],
    ['https://proxy.example.com/vibe', 'https://proxy.example.com/vibe'],
    ['https://proxy.example.com/vibe/', 'https://proxy.example.com/vibe'],
    ['https://proxy.example.com/a/b//', 'https://proxy.example.com/a/b'],
    ['https://proxy.example.com//', 'https://proxy.example.com'],
    ['https://Proxy.EXAMPLE.com:443/Vibe', 'https://proxy.example.com/Vibe'],
    ['https://proxy.example.com:8443/', 'https://proxy.example.com:8443'],
    ['https://proxy.example.com/?', 'https://proxy.example.com'],
    ['https://93.184.216.34/', 'https://93.184.216.34']
  ]
  for (const [given, kept] of cases) t.equal(parseOptions({ apiKey: KEY, baseUrl: given }, NO_ENV).baseUrl, kept, given)
})

t.test('baseUrl: http to a loopback host', async (t) => {
  const cases: Array<[string, string]> = [
    ['http://127.0.0.1', 'http://127.0.0.1'],
    ['http://127.0.0.1:3000/', 'http://127.0.0.1:3000'],
    ['http://127.1.2.3:8080/api/', 'http://127.1.2.3:8080/api'],
    ['http://127.255.255.255', 'http://127.255.255.255'],
    ['http://localhost:8080', 'http://localhost:8080'],
    ['http://LOCALHOST:8080', 'http://localhost:8080'],
    ['http://[::1]:9000/', 'http://[::1]:9000'],
    ['http://[0:0:0:0:0:0:0:1]', 'http://[::1]']
  ]
  for (const [given, kept] of cases) t.equal(parseOptions({ apiKey: KEY, baseUrl: given }, NO_ENV).baseUrl, kept, given)
})

t.test('baseUrl: http elsewhere is refused', async (t) => {
  const expected = 'use https: unless its host is loopback (127.0.0.0/8, ::1, localhost)'
  for (const url of ['http://example.com', 'http://vibecode.bitrix24.tech/', 'http://128.0.0.1', 'http://10.0.0.1:80',
    'http://localhost.example.com', 'http://127.0.0.1.nip.io', 'http://[::2]', 'http://0.0.0.0']) {
    const err = caught(() => parseOptions({ apiKey: KEY, baseUrl: url }, NO_ENV))
    t.type(err, Bitrix24TransportError, url)
    t.equal(err.code, ERR_INSECURE_BASE_URL, `${url}: code`)
    t.equal(err.option, 'baseUrl', `${url}: option`)
    t.equal(err.message, `pino-bitrix24-workflow: option "baseUrl" must ${expected}, got ${JSON.stringify(url)}`, `${url}: message`)
  }
})

t.test('baseUrl: http from the environment is checked too', async (t) => {
  const err = caught(() => parseOptions({ apiKey: KEY }, { BITRIX24_BASE_URL: 'http://example.com' }))
  t.equal(err.code, ERR_INSECURE_BASE_URL)
})

t.test('baseUrl: query, fragment and credentials are refused', async (t) => {
  const expected = 'a URL without query, fragment or credentials'
  const cases: Array<[string, string]> = [
    ['https://example.com/?key=1', 'https://example.com/?…'],
    ['https://example.com/api?x', 'https://example.com/api?…'],
    ['https://example.com/#top', 'https://example.com/?…'],
    ['https://user@example.com', 'https://…@example.com/'],
    ['https://user:pass@example.com/', 'https://…@example.com/'],
    ['https://:pass@example.com', 'https://…@example.com/'],
    ['http://localhost:1/?a=b', 'http://localhost:1/?…']
  ]
  for (const [url, shown] of cases) {
    // What a URL may hide (credentials, a key in the query) is never echoed.
    rejects(t, { apiKey: KEY, baseUrl: url }, { option: 'baseUrl', expected, given: JSON.stringify(shown) })
  }
  const err = caught(() => parseOptions({ apiKey: KEY, baseUrl: 'https://u:secret@example.com/?apiKey=vibe_api_secret' }, NO_ENV))
  t.notOk(/secret/.test(err.message), 'neither the password nor the query shows')
})

t.test('baseUrl: not a URL, or not http(s)', async (t) => {
  const absolute = 'an absolute URL such as https://vibecode.bitrix24.tech'
  for (const url of ['vibecode.bitrix24.tech', '/v1', 'not a url', 'https://']) {
    rejects(t, { apiKey: KEY, baseUrl: url }, { option: 'baseUrl', expected: absolute, given: JSON.stringify(url) })
  }
  for (const url of ['ftp://example.com', 'ws://localhost:1', 'file:///tmp/x']) {
    rejects(t, { apiKey: KEY, baseUrl: url }, { option: 'baseUrl', expected: 'an https: URL', given: JSON.stringify(url) })
  }
  rejects(t, { apiKey: KEY, baseUrl: 'mailto:a@b.c' }, { option: 'baseUrl', expected: 'an https: URL', given: '"mailto:…@b.c"' })
  rejects(t, { apiKey: KEY, baseUrl: '' }, { option: 'baseUrl', expected: 'a non-empty string', given: '""' })
  rejects(t, { apiKey: KEY, baseUrl: 443 }, { option: 'baseUrl', expected: 'a non-empty string', given: '443' })
  rejects(t, { apiKey: KEY }, { option: 'baseUrl', env: 'BITRIX24_BASE_URL', expected: absolute, given: '"nope"' }, { BITRIX24_BASE_URL: 'nope' })
})

t.test('a long value is cut in the message', async (t) => {
  const url = 'ftp://example.com/' + 'a'.repeat(100)
  rejects(t, { apiKey: KEY, baseUrl: url }, { option: 'baseUrl', expected: 'an https: URL', given: JSON.stringify(url.slice(0, 60) + '…') })
})

const INTEGERS: Array<[string, number, number]> = [
  ['flushInterval', 0, 3600000],
  ['maxEntryBytes', 256, 65535],
  ['concurrency', 1, 256],
  ['requestTimeout', 100, 600000],
  ['closeTimeout', 0, 9000],
  ['errorStackFrames', 0, 100],
  ['burst', 1, 10000],
  ['maxRetries', 0, 100],
  ['maxRetryDelay', 1, 3600000],
  ['maxBufferedBytes', 65536, 2 ** 31],
  ['maxTokens', 1, 10000000],
  ['statsInterval', 0, 86400000],
  ['spoolMaxBytes', 65536, 2 ** 40],
  ['spoolMaxAge', 1000, 30 * 86400000]
]

t.test('integer options', async (t) => {
  for (const [name, min, max] of INTEGERS) {
    t.equal(parseOptions({ apiKey: KEY, [name]: min }, NO_ENV)[name as keyof Config], min, `${name}: ${min} is allowed`)
    t.equal(parseOptions({ apiKey: KEY, [name]: max }, NO_ENV)[name as keyof Config], max, `${name}: ${max} is allowed`)
    const expected = `an integer from ${min} to ${max}`
    const bad: Array<[unknown, string]> = [
      [min - 1, String(min - 1)],
      [max + 1, String(max + 1)],
      [min + 0.5, String(min + 0.5)],
      [NaN, 'NaN'],
      [Infinity, 'Infinity'],
      [String(min), JSON.stringify(String(min))],
      [null, 'null'],
      [true, 'true'],
      [[min], 'an array'],
      [{}, 'a value of type object']
    ]
    for (const [value, given] of bad) rejects(t, { apiKey: KEY, [name]: value }, { option: name, expected, given })
  }
})

t.test('maxRequestsPerSecond is a number, fractions allowed', async (t) => {
  for (const ok of [0, 0.25, 2, 10000]) {
    t.equal(parseOptions({ apiKey: KEY, maxRequestsPerSecond: ok }, NO_ENV).maxRequestsPerSecond, ok, String(ok))
  }
  const expected = 'a number from 0 to 10000'
  const bad: Array<[unknown, string]> = [[-0.1, '-0.1'], [10000.5, '10000.5'], [NaN, 'NaN'], [Infinity, 'Infinity'], ['2', '"2"'], [null, 'null']]
  for (const [value, given] of bad) rejects(t, { apiKey: KEY, maxRequestsPerSecond: value }, { option: 'maxRequestsPerSecond', expected, given })
})

t.test('boolean options', async (t) => {
  for (const name of ['keepNonBmp', 'retryAmbiguous']) {
    t.equal(parseOptions({ apiKey: KEY, [name]: true }, NO_ENV)[name as keyof Config], true)
    t.equal(parseOptions({ apiKey: KEY, [name]: false }, NO_ENV)[name as keyof Config], false)
    rejects(t, { apiKey: KEY, [name]: 'true' }, { option: name, expected: 'true or false', given: '"true"' })
    rejects(t, { apiKey: KEY, [name]: 1 }, { option: name, expected: 'true or false', given: '1' })
    rejects(t, { apiKey: KEY, [name]: null }, { option: name, expected: 'true or false', given: 'null' })
  }
})

t.test('string options', async (t) => {
  for (const name of ['tokenKey', 'eventKey', 'messageFormat']) {
    t.equal(parseOptions({ apiKey: KEY, [name]: 'x' }, NO_ENV)[name as keyof Config], 'x')
    rejects(t, { apiKey: KEY, [name]: '' }, { option: name, expected: 'a non-empty string', given: '""' })
    rejects(t, { apiKey: KEY, [name]: 5 }, { option: name, expected: 'a non-empty string', given: '5' })
    rejects(t, { apiKey: KEY, [name]: ['x'] }, { option: name, expected: 'a non-empty string', given: 'an array' })
    rejects(t, { apiKey: KEY, [name]: () => 'x' }, { option: name, expected: 'a non-empty string', given: 'a value of type function' })
  }
})

t.test('include and exclude', async (t) => {
  t.match(parseOptions({ apiKey: KEY, include: [], exclude: [] }, NO_ENV), { include: [], exclude: [] })
  for (const name of ['include', 'exclude']) {
    const expected = 'an array of non-empty strings'
    rejects(t, { apiKey: KEY, [name]: 'rows' }, { option: name, expected, given: '"rows"' })
    rejects(t, { apiKey: KEY, [name]: ['rows', ''] }, { option: name, expected, given: 'an array' })
    rejects(t, { apiKey: KEY, [name]: ['rows', 1] }, { option: name, expected, given: 'an array' })
    rejects(t, { apiKey: KEY, [name]: { rows: true } }, { option: name, expected, given: 'a value of type object' })
    rejects(t, { apiKey: KEY, [name]: null }, { option: name, expected, given: 'null' })
  }
})

t.test('onRateLimit', async (t) => {
  t.equal(parseOptions({ apiKey: KEY, onRateLimit: 'buffer' }, NO_ENV).onRateLimit, 'buffer')
  t.equal(parseOptions({ apiKey: KEY, onRateLimit: 'drop' }, NO_ENV).onRateLimit, 'drop')
  rejects(t, { apiKey: KEY, onRateLimit: 'wait' }, { option: 'onRateLimit', expected: '"buffer" or "drop"', given: '"wait"' })
  // Unlike every other option, null here means "not set".
  rejects(t, { apiKey: KEY, onRateLimit: null }, { option: 'onRateLimit', expected: '"buffer" or "drop"', given: 'null' })
  rejects(t, { apiKey: KEY, onRateLimit: 0 }, { option: 'onRateLimit', expected: '"buffer" or "drop"', given: '0' })
})

t.test('level', async (t) => {
  for (const ok of ['warn', 'INFO', 'notice', 40, 0, -5, 2.5]) {
    t.equal(parseOptions({ apiKey: KEY, level: ok }, NO_ENV).level, ok, JSON.stringify(ok))
  }
  const expected = 'a level label or number'
  const bad: Array<[unknown, string]> = [['', '""'], [NaN, 'NaN'], [Infinity, 'Infinity'], [true, 'true'], [null, 'null'], [{}, 'a value of type object'], [['warn'], 'an array']]
  for (const [value, given] of bad) rejects(t, { apiKey: KEY, level: value }, { option: 'level', expected, given })
})

t.test('the first invalid option is reported', async (t) => {
  rejects(t, { apiKey: KEY, concurrency: 0, burst: 0 }, { option: 'concurrency', expected: 'an integer from 1 to 256', given: '0' })
})

t.test('describe', async (t) => {
  t.equal(describe('x', null), 'null')
  t.equal(describe('x', undefined), 'a value of type undefined')
  t.equal(describe('x', []), 'an array')
  t.equal(describe('x', 'abc'), '"abc"')
  t.equal(describe('x', 'a"b\n'), '"a\\"b\\n"', 'escaped')
  t.equal(describe('x', 'a'.repeat(60)), JSON.stringify('a'.repeat(60)), '60 characters in full')
  t.equal(describe('x', 'a'.repeat(61)), JSON.stringify('a'.repeat(60) + '…'), 'longer ones cut at 60')
  t.equal(describe('x', 12), '12')
  t.equal(describe('x', false), 'false')
  t.equal(describe('x', 10n), 'a value of type bigint')
  t.equal(describe('x', Symbol('s')), 'a value of type symbol')
  t.equal(describe('x', {}), 'a value of type object')
  t.equal(describe('apiKey', 'vibe_api_secret'), 'a string of 15 characters')
  t.equal(describe('sessionToken', ''), 'a string of 0 characters')
  t.equal(describe('apiKey', 12345), 'a value of type number')
  t.equal(describe('sessionToken', true), 'a value of type boolean')
  t.equal(describe('level', 'VIBE_API_x'), 'a string of 10 characters that looks like a key or token (not shown)', 'a key given to any option')
})

t.test('describe: a value can reach a terminal, so it carries no terminal controls', async (t) => {
  // JSON.stringify escapes C0 controls only: C1 (U+009B is a CSI), line and
  // paragraph separators and bidi controls would pass raw into stderr.
  const hostile = 'Europe/\u009b2J\u001b[2J\u2028pino-bitrix24-workflow: forged\u202e'
  const shown = describe('timeZone', hostile)
  t.notMatch(shown, /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/)
  t.match(shown, /forged/, 'the visible part is still shown')
  const err = (() => { try { parseOptions({ apiKey: 'vibe_api_test_key' }, { BITRIX24_TIME_ZONE: hostile }) } catch (e) { return e as Error } })()
  t.match(err, { option: 'timeZone', env: 'BITRIX24_TIME_ZONE' })
  t.notMatch(err?.message, /[\u007f-\u009f\u2028\u2029\u202a-\u202e]/, 'an env value neither')
})

t.test('Bitrix24TransportError', async (t) => {
  const err = new Bitrix24TransportError(ERR_INVALID_OPTION, 'text')
  t.equal(err.option, undefined, 'the option is optional')
  t.equal(err.message, 'text')
  t.equal(ERR_INVALID_OPTION, 'ERR_BITRIX24_INVALID_OPTION')
  t.equal(ERR_MISSING_API_KEY, 'ERR_BITRIX24_MISSING_API_KEY')
  t.equal(ERR_INSECURE_BASE_URL, 'ERR_BITRIX24_INSECURE_BASE_URL')
})

t.test('defaults are frozen', async (t) => {
  t.ok(Object.isFrozen(defaults))
  t.ok(Object.isFrozen(defaults.exclude))
  t.throws(() => { (defaults as { flushInterval: number }).flushInterval = 1 }, TypeError, 'strict mode: assignment throws')
  t.equal(defaults.flushInterval, 2000)
  const config = parseOptions({ apiKey: KEY }, NO_ENV)
  config.exclude.push('x')
  t.same(defaults.exclude, [], 'a config gets its own copy of a default list')
  const include = ['a']
  t.not(parseOptions({ apiKey: KEY, include }, NO_ENV).include, include, 'and of a given one')
})

t.test('timeZone: an IANA name, canonicalised; from BITRIX24_TIME_ZONE too', async (t) => {
  t.equal(parseOptions({ apiKey: KEY }, NO_ENV).timeZone, undefined, 'default: the local zone')
  t.equal(parseOptions({ apiKey: KEY, timeZone: 'Europe/Berlin' }, NO_ENV).timeZone, 'Europe/Berlin')
  t.equal(parseOptions({ apiKey: KEY, timeZone: 'utc' }, NO_ENV).timeZone, 'UTC')
  t.equal(parseOptions({ apiKey: KEY }, { BITRIX24_TIME_ZONE: 'Asia/Tokyo' }).timeZone, 'Asia/Tokyo')
  t.equal(parseOptions({ apiKey: KEY, timeZone: 'UTC' }, { BITRIX24_TIME_ZONE: 'nope' }).timeZone, 'UTC', 'the option wins')
  const expected = 'an IANA time zone name such as "Europe/Berlin"'
  rejects(t, { apiKey: KEY, timeZone: 'Mars/Olympus' }, { option: 'timeZone', expected, given: '"Mars/Olympus"' })
  rejects(t, { apiKey: KEY, timeZone: '' }, { option: 'timeZone', expected: 'a non-empty string', given: '""' })
  rejects(t, { apiKey: KEY, timeZone: 3 }, { option: 'timeZone', expected: 'a non-empty string', given: '3' })
  rejects(t, { apiKey: KEY }, { option: 'timeZone', env: 'BITRIX24_TIME_ZONE', expected, given: '"Moon"' }, { BITRIX24_TIME_ZONE: 'Moon' })
})

t.test('proxy: an http(s) URL whose credentials are never echoed', async (t) => {
  t.equal(parseOptions({ apiKey: KEY }, { HTTPS_PROXY: 'http://p:1' }).proxy, undefined, 'default none: the proxy env variables are for the client')
  t.equal(parseOptions({ apiKey: KEY, proxy: 'http://proxy.corp:3128' }, NO_ENV).proxy, 'http://proxy.corp:3128')
  t.equal(parseOptions({ apiKey: KEY, proxy: 'https://u:p@proxy.corp' }, NO_ENV).proxy, 'https://u:p@proxy.corp')
  const expected = 'an http: or https: URL such as http://proxy.example.com:3128'
  rejects(t, { apiKey: KEY, proxy: 'socks5://u:hunter2@proxy.corp:1080' }, { option: 'proxy', expected, given: '"socks5://…@proxy.corp:1080"' })
  rejects(t, { apiKey: KEY, proxy: 'proxy.corp:3128' }, { option: 'proxy', expected, given: '"proxy.corp:3128"' })
  rejects(t, { apiKey: KEY, proxy: 'http://u:hunter2@proxy.corp/#x' }, { option: 'proxy', expected, given: '"http://…@proxy.corp/?…"' })
  const err = rejects(t, { apiKey: KEY, proxy: 'ftp://admin:hunter2@proxy.corp/?token=zzz' }, { option: 'proxy', expected, given: '"ftp://…@proxy.corp/?…"' })
  t.notMatch(err.message, /hunter2|zzz|admin/)
})

t.test('proxy and redisUrl: credentials must be percent-decodable, or the agent would throw an uncoded URIError at start', async (t) => {
  for (const [name, value] of [['proxy', 'http://user:hunter2%zz@proxy.corp:3128'], ['proxy', 'http://adm%E0in:pw@proxy.corp'], ['redisUrl', 'redis://:hunter2%@redis.corp:6379']] as const) {
    const err = caught(() => parseOptions({ apiKey: KEY, [name]: value }, NO_ENV))
    t.match(err, { code: 'ERR_BITRIX24_INVALID_OPTION', option: name, message: /percent-encoded credentials/ }, value.replace(/\/\/.*@/, '//…@'))
    t.notMatch(err.message, /hunter2|adm/)
  }
  t.equal(parseOptions({ apiKey: KEY, proxy: 'http://us%40er:p%2Fw@proxy.corp' }, NO_ENV).proxy, 'http://us%40er:p%2Fw@proxy.corp', 'well-encoded ones pass')
})

t.test('redisUrl: redis: or rediss:, password never echoed; from BITRIX24_REDIS_URL too', async (t) => {
  t.equal(parseOptions({ apiKey: KEY }, NO_ENV).redisUrl, undefined)
  t.equal(parseOptions({ apiKey: KEY, redisUrl: 'redis://127.0.0.1:6379' }, NO_ENV).redisUrl, 'redis://127.0.0.1:6379')
  t.equal(parseOptions({ apiKey: KEY }, { BITRIX24_REDIS_URL: 'rediss://:pw@r.example.com' }).redisUrl, 'rediss://:pw@r.example.com')
  const expected = 'a redis: or rediss: URL such as redis://127.0.0.1:6379'
  const err = rejects(t, { apiKey: KEY, redisUrl: 'http://:hunter2@r.example.com' }, { option: 'redisUrl', expected, given: '"http://…@r.example.com/"' })
  t.notMatch(err.message, /hunter2/)
  rejects(t, { apiKey: KEY, redisUrl: 'redis://' }, { option: 'redisUrl', expected, given: '"redis://"' })
  rejects(t, { apiKey: KEY, redisUrl: 'not a url' }, { option: 'redisUrl', expected, given: '"not a url"' })
  const fromEnv = rejects(t, { apiKey: KEY }, { option: 'redisUrl', env: 'BITRIX24_REDIS_URL', expected, given: '"mysql://…@db"' }, { BITRIX24_REDIS_URL: 'mysql://root:hunter2@db' })
  t.notMatch(fromEnv.message, /hunter2/)
})

t.test('quiet: a boolean; BITRIX24_QUIET takes true, false, 1 or 0', async (t) => {
  t.equal(parseOptions({ apiKey: KEY }, NO_ENV).quiet, false)
  t.equal(parseOptions({ apiKey: KEY, quiet: true }, NO_ENV).quiet, true)
  for (const [text, value] of [['1', true], ['true', true], ['0', false], ['false', false], ['', false]] as const) {
    t.equal(parseOptions({ apiKey: KEY }, { BITRIX24_QUIET: text }).quiet, value, `BITRIX24_QUIET=${text}`)
  }
  t.equal(parseOptions({ apiKey: KEY, quiet: false }, { BITRIX24_QUIET: '1' }).quiet, false, 'the option wins')
  rejects(t, { apiKey: KEY }, { option: 'quiet', env: 'BITRIX24_QUIET', expected: 'true, false, 1 or 0', given: '"yes"' }, { BITRIX24_QUIET: 'yes' })
  rejects(t, { apiKey: KEY, quiet: 'yes' }, { option: 'quiet', expected: 'true or false', given: '"yes"' })
})

t.test('describe hides what a URL option may carry', async (t) => {
  t.equal(describe('baseUrl', 'https://u:p@h/?k=v'), '"https://…@h/?…"')
  t.equal(describe('proxy', 'http://u:p@h:1'), '"http://…@h:1/"')
  t.equal(describe('redisUrl', 'redis://:p@h'), '"redis://…@h"')
  t.equal(describe('tokenKey', 'a://u:p@h'), '"a://u:p@h"', 'other options are shown as given')
})

t.test('a key given to another option is never echoed, whatever the option', async (t) => {
  const key = 'vibe_api_not_a_real_key'
  const cases: Array<[string, unknown]> = [
    ['baseUrl', key], ['level', key], ['messageFormat', key], ['tokenKey', key], ['onRateLimit', key],
    ['flushInterval', key], ['include', ['a', key]], ['baseUrl', `https://example.com/${key}`]
  ]
  for (const [option, value] of cases) {
    const err = caught(() => parseOptions({ apiKey: 'vibe_api_test_key', [option]: value }, NO_ENV))
    t.match(err, { code: ERR_INVALID_OPTION, option }, option)
    t.match(err.message, new RegExp(`^pino-bitrix24-workflow: option "${option}" must not hold an API key or session token, got a string of \\d+ characters that looks like a key or token \\(not shown\\)$`))
    t.notMatch(err.message, /not_a_real/, `${option}: the key is not shown`)
  }
})

t.test('the configured key or session token given to another option is never echoed', async (t) => {
  const key = 'plainkey0123456789'
  const session = 'plain-session-0123'
  for (const [option, value] of [['level', session], ['baseUrl', key], ['messageFormat', `{msg} ${session}`]]) {
    const err = caught(() => parseOptions({ apiKey: key, sessionToken: session, [option as string]: value }, NO_ENV))
    t.match(err, { code: ERR_INVALID_OPTION, option }, option)
    t.notMatch(err.message, /plain/, `${option as string}: not shown`)
  }
  const fromEnv = caught(() => parseOptions({ level: key }, { BITRIX24_API_KEY: key }))
  t.match(fromEnv, { option: 'level' })
  t.notMatch(fromEnv.message, /plain/, 'a key from the environment too')
  const envUrl = caught(() => parseOptions({}, { BITRIX24_API_KEY: key, BITRIX24_BASE_URL: `https://example.com/${key}` }))
  t.match(envUrl, { option: 'baseUrl' })
  t.notMatch(envUrl.message, /plain/, 'a base URL from the environment that holds the key')
  t.same(parseOptions({ apiKey: key, level: 'warn', include: ['plain'] }, NO_ENV).include, ['plain'], 'other values pass')
})

t.test('baseUrl: a password with @ or /, or a URL with backslashes, is not echoed', async (t) => {
  for (const url of ['https://user:p@ss@example.com/', 'https://user:pa/secret@example.com', 'https:\\\\user:secret@example.com', 'http://user:secret@example.com', 'https://user:p@ss/secret@example.com']) {
    const err = caught(() => parseOptions({ apiKey: KEY, baseUrl: url }, NO_ENV))
    t.equal(err.option, 'baseUrl', url)
    t.notMatch(err.message, /secret|p@ss|ss@|ss\//, `${url}: ${err.message}`)
  }
})

t.test('unknown option names: rejected with the nearest option named', async (t) => {
  t.throws(() => parseOptions({ apiKey: KEY, flushIntervall: 500 }, NO_ENV), {
    code: 'ERR_BITRIX24_UNKNOWN_OPTION',
    option: 'flushIntervall',
    message: 'pino-bitrix24-workflow: unknown option "flushIntervall" (did you mean "flushInterval"?)'
  })
  t.throws(() => parseOptions({ apiKey: KEY, levle: 'warn', onRatelimit: 'drop' }, NO_ENV), {
    message: 'pino-bitrix24-workflow: unknown options "levle" (did you mean "level"?), "onRatelimit" (did you mean "onRateLimit"?)'
  })
  t.throws(() => parseOptions({ apiKey: KEY, zzzzzz: 1, b: 2, c: 3, d: 4 }, NO_ENV), {
    message: 'pino-bitrix24-workflow: unknown options "zzzzzz", "b", "c" and 1 more'
  })
  const long = caught(() => parseOptions({ apiKey: KEY, ['x'.repeat(100) + '\u001b[2J']: 1 }, NO_ENV))
  t.equal(long.message, `pino-bitrix24-workflow: unknown option "${'x'.repeat(40)}…"`, 'a long name is cut')
  const secret = caught(() => parseOptions({ apiKey: KEY, [KEY]: 1 }, NO_ENV))
  t.notOk(secret.message.includes(KEY), 'a key given as a name is not echoed')
  t.doesNotThrow(() => parseOptions({ apiKey: KEY, $context: { threadStreamVersion: '4' }, pinoWillSendConfig: true, levels: {}, dedupe: true }, NO_ENV),
    'what pino and thread-stream add is no unknown option')
})
