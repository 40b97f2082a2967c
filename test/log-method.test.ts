import t from 'tap'
import pino from 'pino'
import { withEventToken, runInScope, type EventTokenScope } from '../lib/context'
import { createEventTokenLogMethod, eventTokenLogMethod } from '../lib/log-method'
import { logPrecedenceCases, PRECEDENCE_KEY_COUNTS, PRECEDENCE_TOKENS } from './fixtures/precedence'

/** A pino logger with the hook, writing into an array of raw lines. */
function capture (options: pino.LoggerOptions = {}) {
  const raw: string[] = []
  const logger = pino({ base: null, timestamp: false, hooks: { logMethod: eventTokenLogMethod }, ...options }, { write: (s: string) => { raw.push(s) } })
  return { raw, logger, lines: () => raw.map((s) => JSON.parse(s) as Record<string, unknown>) }
}

/** How often the key appears in a raw JSON line, whatever the parser would keep. */
function keyCount (raw: string, key = 'eventToken'): number {
  return raw.split(`"${key}":`).length - 1
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve))

t.test('the hook: the token inside a context, the line as it is outside; the same bytes as a child logger', async (t) => {
  const { logger, raw } = capture()
  const child = capture()
  logger.info({ a: 1 }, 'outside')
  withEventToken('wf.ctx', () => {
    logger.info({ a: 2 }, 'inside')
    logger.info('inside, no object')
    logger.warn('inside %s at %d', 'formatted', 30)
    logger.error(new Error('boom'))
  })
  const bound = child.logger.child({ eventToken: 'wf.ctx' })
  child.logger.info({ a: 1 }, 'outside')
  bound.info({ a: 2 }, 'inside')
  bound.info('inside, no object')
  bound.warn('inside %s at %d', 'formatted', 30)
  t.same(raw.slice(0, 4), child.raw, 'byte for byte what the child logger writes')
  const error = JSON.parse(raw[4] ?? '{}') as Record<string, unknown>
  t.equal(error.eventToken, 'wf.ctx')
  t.equal(error.level, 50)
  t.match(error.err, { type: 'Error', message: 'boom' })
  t.same(raw.map((r) => keyCount(r)), [0, 1, 1, 1, 1])
})

t.test('one child per context and logger, made at its first line; made again after setBindings', async (t) => {
  const made: unknown[] = []
  const { logger, lines } = capture({ hooks: { logMethod: eventTokenLogMethod }, base: null })
  const scope: EventTokenScope = { token: 'wf.once' }
  const onChild = (l: unknown) => { made.push(l) }
  const watched = pino({ base: null, timestamp: false, hooks: { logMethod: eventTokenLogMethod }, onChild }, { write: () => {} })
  runInScope(scope, () => {
    for (let i = 0; i < 5; i++) watched.info('line')
  })
  t.equal(made.length, 1, 'five lines, one child')
  runInScope(scope, () => watched.info('again'))
  t.equal(made.length, 1, 'the context keeps it between entries')
  withEventToken('wf.other', () => watched.info('another context'))
  t.equal(made.length, 2, 'another context, another child')

  const step = logger.child({ step: 1 })
  withEventToken('wf.set', () => {
    step.info('before')
    step.setBindings({ step: 2 })
    step.info('after setBindings')
    logger.info('the root, its own child')
  })
  t.same(lines().map((l) => [l.step, l.eventToken, l.msg]), [[1, 'wf.set', 'before'], [2, 'wf.set', 'after setBindings'], [undefined, 'wf.set', 'the root, its own child']])
})

t.test('precedence: a token in the line or bound to the logger beats the context; never two in a line', async (t) => {
  const { logger, raw, lines } = capture()
  logPrecedenceCases(logger)
  t.same(lines().map((l) => l.eventToken), PRECEDENCE_TOKENS)
  t.same(raw.map((r) => keyCount(r)), PRECEDENCE_KEY_COUNTS)
  // An Error is written under errorKey: a field of its own named like the key is not the line's token.
  const err = Object.assign(new Error('boom'), { eventToken: 'wf.err' })
  withEventToken('wf.ctx', () => logger.error(err))
  const last = lines().at(-1) as { eventToken: unknown, err: { eventToken: unknown } }
  t.same([last.eventToken, last.err.eventToken], ['wf.ctx', 'wf.err'])
  t.equal(raw[6], '{"level":30,"meta":{"a":1,"eventToken":"nested, not the key"},"eventToken":"wf.ctx","msg":"nested key"}\n')
})

t.test('a custom tokenKey, and a bad one named at once', async (t) => {
  const { logger, lines, raw } = capture({ hooks: { logMethod: createEventTokenLogMethod('bitrixToken') } })
  withEventToken('wf.custom', () => {
    logger.info('by context')
    logger.child({ bitrixToken: 'wf.bound' }).info('bound')
    logger.info({ eventToken: 'not the key' }, 'other key')
  })
  t.same(lines().map((l) => l.bitrixToken), ['wf.custom', 'wf.bound', 'wf.custom'])
  t.same(raw.map((r) => keyCount(r, 'bitrixToken')), [1, 1, 1])
  t.throws(() => createEventTokenLogMethod(''), { code: 'ERR_BITRIX24_INVALID_OPTION', option: 'tokenKey', message: /option "tokenKey" must be a non-empty string, got ""/ })
  t.throws(() => createEventTokenLogMethod(7 as unknown as string), { option: 'tokenKey', message: /got 7/ })
  for (const reserved of ['level', 'serializers', 'formatters', 'customLevels']) {
    t.throws(() => createEventTokenLogMethod(reserved), { code: 'ERR_BITRIX24_INVALID_OPTION', option: 'tokenKey', message: new RegExp(`cannot be "${reserved}" for the log-method hook`) })
  }
})

t.test('levels, the level filter and msgPrefix stay the logger\'s', async (t) => {
  const { logger, lines } = capture({ level: 'warn', customLevels: { audit: 45 }, msgPrefix: '[app] ' })
  const audit = (logger as unknown as Record<string, (msg: string) => void>).audit?.bind(logger)
  withEventToken('wf.levels', () => {
    logger.info('filtered out')
    logger.warn('warned')
    audit?.('audited')
    logger.level = 'error'
    logger.warn('filtered after the level changed')
    logger.error('kept')
  })
  t.same(lines().map((l) => [l.level, l.msg, l.eventToken]), [[40, '[app] warned', 'wf.levels'], [45, '[app] audited', 'wf.levels'], [50, '[app] kept', 'wf.levels']])
})

t.test('concurrent contexts and a completed one', async (t) => {
  const { logger, lines } = capture()
  await Promise.all(['wf.c.1', 'wf.c.2', 'wf.c.3'].map((token) => withEventToken(token, async () => {
    for (let i = 0; i < 3; i++) {
      logger.info({ token }, 'step')
      await tick()
    }
  })))
  t.same(lines().filter((l) => l.token !== l.eventToken), [], 'every line its own context\'s token')
  t.equal(lines().length, 9)
  const scope: EventTokenScope = { token: 'wf.done' }
  runInScope(scope, () => logger.info('while running'))
  scope.token = undefined
  runInScope(scope, () => logger.info('left behind after completion'))
  t.same(lines().slice(9).map((l) => l.eventToken), ['wf.done', undefined])
})
