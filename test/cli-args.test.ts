import t from 'tap'
import { OPTION_FLAGS, UsageError, customLevels, explain, flagOf, kebab, parseArgs, suggest } from '../lib/cli-args'
import { Bitrix24TransportError, ERR_INVALID_OPTION } from '../lib/errors'
import { DEFAULT_BASE_URL, defaults, parseOptions } from '../lib/options'

function options (...argv: string[]): unknown {
  const command = parseArgs(argv)
  if (command.command !== 'run') throw new Error(`not a run: ${command.command}`)
  return command.options
}

function usageError (tt: tap.Test, argv: string[], message: RegExp | string, flag?: string): UsageError {
  let caught: unknown
  try {
    parseArgs(argv)
  } catch (err) {
    caught = err
  }
  tt.type(caught, UsageError, `${argv.join(' ')} is a usage error`)
  const err = caught as UsageError
  if (typeof message === 'string') tt.equal(err.message, message)
  else tt.match(err.message, message)
  tt.equal(err.flag, flag)
  tt.equal(err.name, 'UsageError')
  return err
}

t.test('every option of the library has exactly one flag, in kebab case', async tt => {
  const config = parseOptions({ apiKey: 'k' }, {})
  tt.same(OPTION_FLAGS.map((f) => f.option).sort(), Object.keys(config).sort())
  for (const flag of OPTION_FLAGS) tt.equal(flag.name, kebab(flag.option as string))
  tt.same(OPTION_FLAGS.map((f) => f.name).slice(0, 3), ['api-key', 'session-token', 'base-url'])
  tt.equal(kebab('maxRequestsPerSecond'), 'max-requests-per-second')
  tt.equal(kebab('keepNonBmp'), 'keep-non-bmp')
})

t.test('defaults shown are those of the library', async tt => {
  const byName = new Map(OPTION_FLAGS.map((f) => [f.name, f]))
  tt.equal(byName.get('flush-interval')?.default, String(defaults.flushInterval))
  tt.equal(byName.get('max-buffered-bytes')?.default, '8388608')
  tt.equal(byName.get('message-format')?.default, "'{time} {level} {msg}'")
  tt.equal(byName.get('on-rate-limit')?.default, "'buffer'")
  tt.equal(byName.get('retry-ambiguous')?.default, 'true')
  tt.equal(byName.get('keep-non-bmp')?.default, 'false')
  tt.equal(byName.get('base-url')?.default, `'${DEFAULT_BASE_URL}'`)
  tt.equal(byName.get('close-timeout')?.range, '0 to 9000', 'ranges come from the declarations')
  tt.equal(byName.get('time-zone')?.env, 'BITRIX24_TIME_ZONE')
  tt.equal(byName.get('quiet')?.env, 'BITRIX24_QUIET')
  tt.equal(byName.get('redis-url')?.env, 'BITRIX24_REDIS_URL')
  tt.equal(byName.get('api-key')?.env, 'BITRIX24_API_KEY')
  tt.equal(byName.get('session-token')?.env, 'BITRIX24_SESSION_TOKEN')
  tt.equal(byName.get('base-url')?.env, 'BITRIX24_BASE_URL')
  tt.equal(byName.get('level')?.default, 'every level')
})

t.test('no arguments: nothing set, tee on', async tt => {
  tt.same(parseArgs([]), { command: 'run', options: {}, tee: true, pino: {} })
})

t.test('strings, as --flag value and --flag=value', async tt => {
  tt.same(options('--api-key', 'vibe_api_x', '--base-url=http://127.0.0.1:1', '--message-format', '{msg} a=b', '--on-rate-limit=drop'), {
    apiKey: 'vibe_api_x',
    baseUrl: 'http://127.0.0.1:1',
    messageFormat: '{msg} a=b',
    onRateLimit: 'drop'
  })
  // Only the first '=' separates; an empty value is passed on for parseOptions to judge.
  tt.same(options('--message-format=a=b', '--token-key='), { messageFormat: 'a=b', tokenKey: '' })
  // A value may start with one dash.
  tt.same(options('--message-format', '-{msg}'), { messageFormat: '-{msg}' })
  // The last of a repeated flag wins.
  tt.same(options('--token-key', 'a', '--token-key', 'b'), { tokenKey: 'b' })
  tt.same(options('--session-token', 's', '--event-key', 'e'), { sessionToken: 's', eventKey: 'e' })
})

t.test('numbers are decimal and strict', async tt => {
  tt.same(options('--flush-interval', '10', '--max-requests-per-second=0.5', '--burst', '+3', '--concurrency', '1e1'), {
    flushInterval: 10, maxRequestsPerSecond: 0.5, burst: 3, concurrency: 10
  })
  tt.same(options('--close-timeout', '-1', '--max-retry-delay=.5', '--max-retries=2.'), { closeTimeout: -1, maxRetryDelay: 0.5, maxRetries: 2 })
  for (const bad of ['12abc', '', ' 5', '5 ', '0x10', 'Infinity', 'NaN', '1_000', '1e', '.', '--']) {
    usageError(tt, [`--flush-interval=${bad}`], `flag --flush-interval takes a number, got ${JSON.stringify(bad)}`, '--flush-interval')
  }
  const long = usageError(tt, ['--max-tokens', 'x'.repeat(100)], /got "x{60}…"$/, '--max-tokens')
  tt.notMatch(long.message, 'x'.repeat(61))
  // Range and integer checks are the library's.
  tt.same(options('--max-tokens', '1.5'), { maxTokens: 1.5 })
  tt.throws(() => parseOptions({ apiKey: 'k', maxTokens: 1.5 }, {}), { message: /option "maxTokens" must be an integer/ })
})

t.test('every number flag parses', async tt => {
  for (const flag of OPTION_FLAGS.filter((f) => f.type === 'number')) {
    tt.same(options(`--${flag.name}`, '7'), { [flag.option as string]: 7 }, flag.name)
  }
})

t.test('booleans: --flag, --no-flag, --flag=true|false', async tt => {
  tt.same(options('--keep-non-bmp'), { keepNonBmp: true })
  tt.same(options('--no-keep-non-bmp'), { keepNonBmp: false })
  tt.same(options('--keep-non-bmp=false', '--retry-ambiguous=true'), { keepNonBmp: false, retryAmbiguous: true })
  tt.same(options('--no-retry-ambiguous'), { retryAmbiguous: false })
  tt.same(options('--no-retry-ambiguous', '--retry-ambiguous'), { retryAmbiguous: true })
  // A boolean never takes the next argument as its value.
  usageError(tt, ['--keep-non-bmp', 'true'], /^unexpected argument #2/)
  usageError(tt, ['--keep-non-bmp=yes'], 'flag --keep-non-bmp takes true or false, got "yes"', '--keep-non-bmp')
  usageError(tt, ['--no-keep-non-bmp=false'], 'flag --no-keep-non-bmp takes no value', '--no-keep-non-bmp')
})

t.test('lists: comma-separated, trimmed, repeated flags add up', async tt => {
  tt.same(options('--include', 'a,b'), { include: ['a', 'b'] })
  tt.same(options('--exclude= a , b.c '), { exclude: ['a', 'b.c'] })
  tt.same(options('--include', 'a', '--include=b,c'), { include: ['a', 'b', 'c'] })
  tt.same(options('--include='), { include: [] })
  tt.same(options('--include=', '--include', 'a'), { include: ['a'] })
  // Empty items are passed on, and parseOptions refuses them with its own message.
  const { exclude } = options('--exclude', 'a,,b') as { exclude: string[] }
  tt.same(exclude, ['a', '', 'b'])
  tt.throws(() => parseOptions({ apiKey: 'k', exclude }, {}), { message: /option "exclude" must be an array of non-empty strings/ })
})

t.test('level: a number when it looks like one, else a label', async tt => {
  tt.same(options('--level', '30'), { level: 30 })
  tt.same(options('--level=info'), { level: 'info' })
  tt.same(options('--level', '25.5'), { level: 25.5 })
})

t.test('tee: on by default, --no-tee, --tee, --tee=false', async tt => {
  tt.same(parseArgs(['--no-tee']), { command: 'run', options: {}, tee: false, pino: {} })
  tt.same(parseArgs(['--no-tee', '--tee']), { command: 'run', options: {}, tee: true, pino: {} })
  tt.same(parseArgs(['--tee=false']), { command: 'run', options: {}, tee: false, pino: {} })
  usageError(tt, ['--no-tee=1'], 'flag --no-tee takes no value', '--no-tee')
  usageError(tt, ['--tee=1'], 'flag --tee takes true or false, got "1"', '--tee')
})

t.test('help and version win over what follows them', async tt => {
  for (const arg of ['-h', '--help']) {
    tt.same(parseArgs([arg]), { command: 'help' })
    tt.same(parseArgs(['--api-key', 'k', arg, '--bogus']), { command: 'help' })
  }
  for (const arg of ['-v', '--version']) {
    tt.same(parseArgs([arg]), { command: 'version' })
    tt.same(parseArgs(['--no-tee', arg, '--flush-interval=x']), { command: 'version' })
  }
  usageError(tt, ['--bogus', '--help'], 'unknown flag --bogus (see --help)', '--bogus')
  // --help=x is no help.
  usageError(tt, ['--help=1'], 'unknown flag --help (see --help)', '--help')
})

t.test('unknown flags are named, their values are not', async tt => {
  usageError(tt, ['--bogus'], 'unknown flag --bogus (see --help)', '--bogus')
  const err = usageError(tt, ['--apikey=vibe_api_SECRET'], 'unknown flag --apikey; did you mean --api-key? (see --help)', '--apikey')
  tt.notMatch(err.message, 'SECRET')
  usageError(tt, ['-x'], 'unknown flag -x (see --help)', '-x')
  usageError(tt, ['-'], 'unknown flag - (see --help)', '-')
  usageError(tt, ['--'], 'unknown flag -- (see --help)', '--')
  usageError(tt, ['-api-key', 'k'], 'unknown flag -api-key; did you mean --api-key? (see --help)', '-api-key')
  // --no- exists for booleans only.
  usageError(tt, ['--no-api-key'], 'unknown flag --no-api-key (see --help)', '--no-api-key')
  usageError(tt, ['--no-bogus'], 'unknown flag --no-bogus (see --help)', '--no-bogus')
  usageError(tt, ['--Flush-Interval', '1'], 'unknown flag --Flush-Interval; did you mean --flush-interval? (see --help)', '--Flush-Interval')
})

t.test('an unknown flag is shown on one line, without terminal controls, and cut', async tt => {
  const caught = (argv: string[]): UsageError => { try { parseArgs(argv) } catch (err) { return err as UsageError } throw new Error('no usage error') }
  const forged = caught(['--x\u001b[2J\rpino-bitrix24-workflow: forged\u009b1m'])
  tt.equal(forged.message, 'unknown flag --x pino-bitrix24-workflow: forged (see --help)')
  const long = caught(['--' + 'y'.repeat(100_000)])
  tt.ok(long.message.length < 200, `cut: ${long.message.length} characters`)
})

t.test('a stray argument is refused without being echoed', async tt => {
  const err = usageError(tt, ['--no-tee', 'vibe_api_SECRET'], 'unexpected argument #2: this command takes flags only (see --help)')
  tt.notMatch(err.message, 'SECRET')
})

t.test('a missing value is refused', async tt => {
  usageError(tt, ['--api-key'], 'flag --api-key needs a value (--api-key <key> or --api-key=<key>)', '--api-key')
  usageError(tt, ['--base-url', '--flush-interval', '5'], /^flag --base-url needs a value/, '--base-url')
  usageError(tt, ['--include'], /^flag --include needs a value \(--include <a,b>/, '--include')
})

t.test('flagOf maps an option to its flag', async tt => {
  tt.equal(flagOf('flushInterval'), '--flush-interval')
  tt.equal(flagOf('apiKey'), '--api-key')
  tt.equal(flagOf('options'), undefined)
  tt.equal(flagOf('tee'), undefined)
  tt.equal(flagOf(undefined), undefined)
})

t.test('explain: the message, and the flag to fix', async tt => {
  tt.equal(explain(new UsageError('unknown flag --x (see --help)', '--x')),
    'pino-bitrix24-workflow: ERR_BITRIX24_USAGE: unknown flag --x (see --help)\n')
  let optionError: unknown
  try {
    parseOptions({ apiKey: 'k', flushInterval: -1 }, {})
  } catch (err) {
    optionError = err
  }
  tt.equal(explain(optionError as Error),
    'pino-bitrix24-workflow: ERR_BITRIX24_INVALID_OPTION: option "flushInterval" must be an integer from 0 to 3600000, got -1\n' +
    'pino-bitrix24-workflow: set it with --flush-interval (see --help)\n')
  tt.equal(explain(new Bitrix24TransportError(ERR_INVALID_OPTION, 'pino-bitrix24-workflow: option "options" must be an object', 'options')),
    'pino-bitrix24-workflow: ERR_BITRIX24_INVALID_OPTION: option "options" must be an object\n')
  tt.equal(explain(new Error('boom')), 'pino-bitrix24-workflow: boom\n')
})

t.test('pipe flags stand in for the logger: --message-key, --error-key, --custom-levels', async tt => {
  const command = parseArgs(['--message-key', 'message', '--error-key=error', '--custom-levels', 'audit:35, err:99'])
  if (command.command !== 'run') throw new Error('not a run')
  tt.same(command.options, {}, 'none of them is an option of the library')
  tt.equal(command.pino.messageKey, 'message')
  tt.equal(command.pino.errorKey, 'error')
  tt.equal(command.pino.levels?.values?.audit, 35)
  tt.equal(command.pino.levels?.values?.err, 99)
  tt.equal(command.pino.levels?.values?.info, 30, 'pino\'s own levels stay, as pino merges customLevels')
  tt.equal(command.pino.levels?.labels?.[35], 'audit')
  tt.equal(command.pino.levels?.labels?.[50], 'error')
  tt.equal(customLevels('info:1').values?.info, 1, 'a custom level may redefine one of pino\'s')
  for (const bad of ['audit', 'audit:', ':35', 'audit:3.5', 'a b:1', 'audit:35,']) {
    usageError(tt, ['--custom-levels', bad], /^flag --custom-levels takes label:number pairs such as audit:35,err:99, got "/, '--custom-levels')
  }
  usageError(tt, ['--message-key='], 'flag --message-key takes a field name, got ""', '--message-key')
  usageError(tt, ['--error-key', ''], 'flag --error-key takes a field name, got ""', '--error-key')
})

t.test('did you mean: a mistyped flag gets the nearest one', async tt => {
  tt.equal(suggest('flush-intervall'), 'flush-interval')
  tt.equal(suggest('flushInterval'), 'flush-interval', 'camelCase')
  tt.equal(suggest('levl'), 'level')
  tt.equal(suggest('max-request'), 'max-requests-per-second', 'a unique prefix')
  tt.equal(suggest('max'), undefined, 'an ambiguous prefix')
  tt.equal(suggest('no-keep-non-bnp'), 'no-keep-non-bmp', 'a negated boolean stays negated')
  tt.equal(suggest('no-api-key'), undefined, 'no- only for booleans')
  tt.equal(suggest('x'), undefined)
  tt.equal(suggest('completely-different'), undefined)
  tt.equal(suggest('messagekey'), 'message-key', 'the pipe flags too')
  usageError(tt, ['--flush-intervall=5'], 'unknown flag --flush-intervall; did you mean --flush-interval? (see --help)', '--flush-intervall')
  usageError(tt, ['--customLevels', 'a:1'], 'unknown flag --customLevels; did you mean --custom-levels? (see --help)', '--customLevels')
})

t.test('explain: a bad env value is reported as that variable, not as the flag', async tt => {
  let fromEnv: unknown
  try {
    parseOptions({ apiKey: 'k' }, { BITRIX24_BASE_URL: 'nope' })
  } catch (err) {
    fromEnv = err
  }
  tt.equal(explain(fromEnv as Error),
    'pino-bitrix24-workflow: ERR_BITRIX24_INVALID_OPTION: env BITRIX24_BASE_URL (option "baseUrl") must be an absolute URL such as https://vibecode.bitrix24.tech, got "nope"\n' +
    'pino-bitrix24-workflow: fix or unset env BITRIX24_BASE_URL, or override it with --base-url\n')
  tt.equal(explain(new Bitrix24TransportError(ERR_INVALID_OPTION, 'x', undefined, 'SOME_VAR')),
    'pino-bitrix24-workflow: ERR_BITRIX24_INVALID_OPTION: x\npino-bitrix24-workflow: fix or unset env SOME_VAR\n', 'no flag to name')
})

t.test('a key given to the wrong flag is never echoed', async tt => {
  const key = 'vibe_api_not_a_real_key'
  for (const argv of [['--flush-interval', key], [`--flush-interval=${key}`], ['--keep-non-bmp=' + key]]) {
    let caught: unknown
    try {
      parseArgs(argv)
    } catch (err) {
      caught = err
    }
    tt.type(caught, UsageError)
    tt.match((caught as Error).message, /got a string of 23 characters that looks like a key or token \(not shown\)$/)
    tt.notMatch((caught as Error).message, /not_a_real/)
  }
  // Not through usageError(): its assertion names would print the key.
  tt.throws(() => parseArgs([`--${key}`]), { name: 'UsageError', flag: undefined, message: 'unknown flag: a string of 25 characters that looks like a key or token (not shown) (see --help)' }, 'an unknown flag that is a key')
})

t.test('the configured key and session token are not echoed through another flag', async tt => {
  const key = 'plainkey0123456789'
  const session = 'plainsession0123'
  // Assertion names never carry the secrets: they would be printed.
  tt.throws(() => parseArgs(['--api-key', key, '--flush-interval', key]), { flag: '--flush-interval', message: /^flag --flush-interval takes a number, got a string of 18 characters that looks/ }, 'the key of --api-key')
  tt.throws(() => parseArgs(['--concurrency', session, `--session-token=${session}`]), { flag: '--concurrency', message: /^flag --concurrency takes a number, got a string of 16 characters that looks/ }, 'the token of --session-token')
  tt.throws(() => parseArgs(['--burst', key], [key, undefined]), { message: /^flag --burst takes a number, got a string of 18 characters that looks/ }, 'a key from the environment')
  tt.throws(() => parseArgs(['--api-key', key, '--burst', 'plain']), { message: 'flag --burst takes a number, got "plain"' }, 'other values are shown')
  tt.same(options('--api-key', key, '--level', key), { apiKey: key, level: key }, 'parseOptions refuses it later, without echoing it either')
  tt.throws(() => parseOptions({ apiKey: key, level: key }, {}), { message: /option "level" must not hold an API key or session token, got a string of 18 characters/ })
  tt.throws(() => parseArgs(['--custom-levels', `audit:35,${session}`], [undefined, session]), { flag: '--custom-levels', message: /^flag --custom-levels takes label:number pairs such as audit:35,err:99, got a string of 16 characters that looks/ }, 'not through --custom-levels either')
})
