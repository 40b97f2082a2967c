import t from 'tap'
import { EventEmitter, EventEmitterAsyncResource, once } from 'node:events'
import pino from 'pino'
import {
  BoundValue,
  checkEventToken,
  createEventTokenMixin,
  currentEventToken,
  eventTokenMergeStrategy,
  eventTokenMixin,
  withEventToken
} from '../lib/context'
import { MAX_TOKEN_LENGTH } from '../lib/router'
import { logPrecedenceCases, PRECEDENCE_KEY_COUNTS, PRECEDENCE_TOKENS } from './fixtures/precedence'

/** A pino logger writing into an array of raw lines. */
function capture (options: pino.LoggerOptions = {}) {
  const raw: string[] = []
  const logger = pino({ base: null, timestamp: false, mixin: eventTokenMixin, mixinMergeStrategy: eventTokenMergeStrategy, ...options }, { write: (s: string) => { raw.push(s) } })
  return { raw, logger, lines: () => raw.map((s) => JSON.parse(s) as Record<string, unknown>) }
}

/** How often the key appears in a raw JSON line, whatever the parser would keep. */
function keyCount (raw: string, key = 'eventToken'): number {
  return raw.split(`"${key}":`).length - 1
}

/** Deterministic delays: mulberry32. */
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve))

t.test('withEventToken returns what fn returns, sync or async; currentEventToken follows', async (t) => {
  t.equal(currentEventToken(), undefined, 'none outside')
  t.equal(withEventToken('wf.sync', () => currentEventToken()), 'wf.sync')
  const value = await withEventToken('wf.async', async () => {
    await tick()
    return currentEventToken()
  })
  t.equal(value, 'wf.async')
  t.equal(withEventToken('wf.outer', () => withEventToken('wf.inner', () => currentEventToken())), 'wf.inner', 'the innermost wins')
  t.equal(currentEventToken(), undefined, 'none after')
  t.throws(() => withEventToken('wf.throws', () => { throw new Error('boom') }), /boom/)
  t.equal(currentEventToken(), undefined, 'none after a throw')
})

t.test('a token from outside is checked, and never echoed', async (t) => {
  t.equal(checkEventToken('ab.cd|ef_12'), 'ab.cd|ef_12')
  const bad: unknown[] = ['', 'a b', 'wf.\u0000', 'wf.ü', 'x'.repeat(513), 42, null, undefined, ['wf.a'], { t: 'wf.a' }]
  for (const token of bad) {
    t.throws(() => withEventToken(token as string, () => 0), { code: 'ERR_BITRIX24_INVALID_EVENT_TOKEN', message: /an event token must be a string of 1 to 512 printable ASCII characters, got / })
  }
  // A token the context takes must be one the transport takes: a longer one would
  // be carried into every line and every line dropped there (tokenTooLong).
  const longest = 'w'.repeat(MAX_TOKEN_LENGTH)
  t.equal(withEventToken(longest, () => currentEventToken()), longest)
  t.throws(() => withEventToken(longest + 'w', () => 0), { code: 'ERR_BITRIX24_INVALID_EVENT_TOKEN', message: /got a string of 513 characters$/ })
  t.throws(() => checkEventToken('secret value'), { message: /got a string of 12 characters with characters other than printable ASCII$/ })
  t.throws(() => checkEventToken('x'.repeat(2000)), { message: /got a string of 2000 characters$/ })
  t.throws(() => checkEventToken(['a']), { message: /got an array$/ })
  t.throws(() => checkEventToken(null), { message: /got null$/ })
  t.throws(() => createEventTokenMixin(''), { code: 'ERR_BITRIX24_INVALID_OPTION', option: 'tokenKey', message: /option "tokenKey" must be a non-empty string, got ""/ })
  t.throws(() => createEventTokenMixin(7 as unknown as string), { option: 'tokenKey', message: /got 7/ })
  t.throws(() => createEventTokenMixin(Symbol('k') as unknown as string), { option: 'tokenKey', message: /got symbol/ })
  t.throws(() => createEventTokenMixin(null as unknown as string), { option: 'tokenKey', message: /got null$/ })
  t.throws(() => createEventTokenMixin(true as unknown as string), { option: 'tokenKey', message: /got true$/ })
  const circular: Record<string, unknown> = {}
  circular.self = circular
  t.throws(() => createEventTokenMixin(circular as unknown as string), { option: 'tokenKey', message: /got object$/ })
})

t.test('the mixin: the token inside a context, nothing outside; no allocation with the merge strategy', async (t) => {
  const { logger, raw, lines } = capture()
  const none = eventTokenMixin({}, 30, logger)
  t.equal(eventTokenMixin({ a: 1 }, 30, logger), none, 'one shared object outside a context')
  t.equal(eventTokenMixin({ a: 1 }, 30, logger.child({ a: 1 }).child({ b: 2 })), none, 'for children too: they inherit the strategy')
  t.ok(Object.isFrozen(none))
  t.same(none, {})
  t.equal(eventTokenMergeStrategy({ a: 1 }, none).constructor, Object)
  const line = { a: 1 }
  t.equal(eventTokenMergeStrategy(line, none), line, 'the line itself, nothing copied')
  logger.info({ a: 1 }, 'outside')
  withEventToken('wf.ctx', () => {
    t.same(eventTokenMixin({}, 30, logger), { eventToken: 'wf.ctx' })
    logger.info({ a: 2 }, 'inside')
    logger.info('inside, no object')
  })
  t.same(lines(), [{ level: 30, a: 1, msg: 'outside' }, { level: 30, eventToken: 'wf.ctx', a: 2, msg: 'inside' }, { level: 30, eventToken: 'wf.ctx', msg: 'inside, no object' }])
  t.same(raw.map((r) => keyCount(r)), [0, 1, 1])
})

t.test('the mixin alone, with pino\'s default merge strategy: a fresh object, so the line\'s fields never leak', async (t) => {
  const { logger, lines } = capture({ mixinMergeStrategy: undefined })
  const a = eventTokenMixin({ a: 1 }, 30, logger)
  t.not(a, eventTokenMixin({ a: 1 }, 30, logger), 'pino writes into it: never shared')
  t.notOk(Object.isFrozen(a))
  t.same(eventTokenMixin({}, 30, undefined), {}, 'without a logger too')
  const frozen = Object.freeze({ component: 'db' })
  logger.info(frozen, 'frozen line object')
  logger.info({ a: 1 }, 'one')
  logger.info({ b: 2 }, 'two')
  withEventToken('wf.alone', () => logger.info({ c: 3 }, 'three'))
  t.same(lines(), [
    { level: 30, component: 'db', msg: 'frozen line object' },
    { level: 30, a: 1, msg: 'one' },
    { level: 30, b: 2, msg: 'two' },
    { level: 30, eventToken: 'wf.alone', c: 3, msg: 'three' }
  ])
})

t.test('precedence: a token in the line or bound to the logger beats the context; never two in a line', async (t) => {
  const { logger, raw, lines } = capture()
  logPrecedenceCases(logger)
  // One difference from the hook: pino merges the line's own `eventToken: undefined` over the
  // mixin's token, so that line carries none (the hook's token is a binding and stays).
  t.same(lines().map((l) => l.eventToken), PRECEDENCE_TOKENS.map((token, i) => i === 9 ? undefined : token))
  t.same(raw.map((r) => keyCount(r)), PRECEDENCE_KEY_COUNTS.map((n, i) => i === 9 ? 0 : n))
  t.equal(raw[6], '{"level":30,"meta":{"a":1,"eventToken":"nested, not the key"},"eventToken":"wf.ctx","msg":"nested key"}\n')
})

t.test('precedence under a merge strategy where the mixin wins, and with a custom tokenKey', async (t) => {
  const mixinWins = (merge: object, mixin: object) => Object.assign({}, merge, mixin)
  const { logger, lines } = capture({ mixinMergeStrategy: mixinWins })
  withEventToken('wf.ctx', () => logger.info({ eventToken: 'wf.own' }, 'own'))
  t.equal(lines()[0]?.eventToken, 'wf.own')

  const custom = capture({ mixin: createEventTokenMixin('bitrixToken') })
  withEventToken('wf.custom', () => {
    custom.logger.info('by context')
    custom.logger.child({ bitrixToken: 'wf.bound' }).info('bound')
    custom.logger.info({ eventToken: 'not the key' }, 'other key')
  })
  t.same(custom.lines().map((l) => l.bitrixToken), ['wf.custom', 'wf.bound', 'wf.custom'])
  t.same(custom.raw.map((r) => keyCount(r, 'bitrixToken')), [1, 1, 1])
})

t.test('BoundValue: pino\'s bindings, and loggers that are not laid out like pino\'s', async (t) => {
  const bound = new BoundValue('eventToken')
  const logger = pino({ base: null }, { write: () => {} })
  t.equal(bound.of(logger), undefined)
  t.equal(bound.of(logger), undefined, 'the same bindings again')
  t.equal(bound.of(logger.child({ eventToken: 'wf.b' })), 'wf.b')
  const broken = { [Symbol('pino.chindings')]: ',"eventToken":' }
  t.equal(bound.of(broken), true, 'unparsable bindings that name the key count as bound')
  t.equal(bound.of({ bindings: () => ({ eventToken: 'wf.public' }) }), 'wf.public', 'the public bindings() otherwise')
  t.equal(bound.of({}), undefined)
  t.equal(bound.of(undefined), undefined)
  t.equal(bound.of(null), undefined)
  // A second copy of pino has symbols of its own: they are found again.
  const other = { [Symbol('pino.chindings')]: ',"eventToken":"wf.other"' }
  t.equal(bound.of(other), 'wf.other')
  t.equal(bound.of(logger.child({ eventToken: 'wf.again' })), 'wf.again')
})

t.test('isolation: interleaved awaits, promise chains and timers of concurrent contexts', async (t) => {
  const random = prng(11)
  const seen: Array<[string, string | undefined]> = []
  const note = (token: string) => { seen.push([token, currentEventToken()]) }
  const activity = (token: string) => withEventToken(token, async () => {
    for (let i = 0; i < 5; i++) {
      note(token)
      await tick()
      note(token)
      await Promise.resolve().then(() => note(token)).then(tick).then(() => note(token))
      await new Promise<void>((resolve) => setTimeout(() => { note(token); resolve() }, Math.floor(random() * 3)))
      await new Promise<void>((resolve) => process.nextTick(() => { note(token); resolve() }))
      queueMicrotask(() => note(token))
    }
    const interval = await new Promise<number>((resolve) => {
      let n = 0
      const timer = setInterval(() => {
        note(token)
        if (++n === 3) {
          clearInterval(timer)
          resolve(n)
        }
      }, 1)
    })
    return interval
  })
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => activity(`wf.iso.${i}`)))
  t.same(results, Array(20).fill(3))
  t.equal(seen.length, 20 * (5 * 7 + 3))
  t.same(seen.filter(([want, got]) => want !== got), [], 'every callback saw its own token')
})

t.test('isolation: event emitters', async (t) => {
  // An emitter made inside a context and emitted from it: its own token.
  const own = await withEventToken('wf.em.own', async () => {
    const emitter = new EventEmitter()
    const heard = once(emitter, 'done')
    let token: string | undefined
    emitter.on('done', () => { token = currentEventToken() })
    setTimeout(() => emitter.emit('done'), 1)
    await heard
    return token
  })
  t.equal(own, 'wf.em.own')

  // A listener runs in the context of whoever emits. An emitter that outlives
  // the context it was made in (and is emitted from elsewhere) keeps its maker's
  // token when it is an EventEmitterAsyncResource.
  const bound = withEventToken('wf.em.a', () => new EventEmitterAsyncResource({ name: 'activity-a' }))
  const plain = withEventToken('wf.em.a', () => new EventEmitter())
  const heard: Record<string, string | undefined> = {}
  bound.on('x', () => { heard.bound = currentEventToken() })
  plain.on('x', () => { heard.plain = currentEventToken() })
  withEventToken('wf.em.b', () => {
    bound.emit('x')
    plain.emit('x')
  })
  t.equal(heard.bound, 'wf.em.a', 'EventEmitterAsyncResource: the context it was made in')
  t.equal(heard.plain, 'wf.em.b', 'a plain emitter: the emitter\'s caller (documented)')
  bound.emit('x')
  t.equal(heard.bound, 'wf.em.a', 'even when emitted outside any context')
  bound.emitDestroy()
})

t.test('isolation: code that leaves the context sees no token', async (t) => {
  const seen: Array<string | undefined> = []
  // Scheduled outside, run while contexts are active: it belongs to none.
  const outside = new Promise<void>((resolve) => setImmediate(() => { seen.push(currentEventToken()); resolve() }))
  const { logger, lines } = capture()
  const shared = new EventEmitter()
  shared.on('ping', () => logger.info('listener registered outside, emitted outside'))
  await Promise.all([
    withEventToken('wf.leave.a', async () => {
      await tick()
      logger.info('a')
    }),
    withEventToken('wf.leave.b', async () => {
      await outside
      logger.info('b')
    })
  ])
  shared.emit('ping')
  logger.info('after both')
  t.same(seen, [undefined])
  t.same(lines().map((l) => [l.msg, l.eventToken]).sort(), [['a', 'wf.leave.a'], ['after both', undefined], ['b', 'wf.leave.b'], ['listener registered outside, emitted outside', undefined]])
})
