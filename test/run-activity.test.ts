import t from 'tap'
import pino from 'pino'
import { currentEventToken, eventTokenMergeStrategy, eventTokenMixin } from '../lib/context'
import { runActivity } from '../lib/run-activity'
import { eventTokenLogMethod } from '../lib/log-method'

function capture (options: pino.LoggerOptions = {}) {
  const raw: string[] = []
  const logger = pino({ base: null, timestamp: false, mixin: eventTokenMixin, mixinMergeStrategy: eventTokenMergeStrategy, ...options }, { write: (s: string) => { raw.push(s) } })
  return { raw, logger, lines: () => raw.map((s) => JSON.parse(s) as Record<string, unknown>) }
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve))

t.test('success: the handler runs in context, its value completes the activity in the last line', async (t) => {
  const { logger, lines } = capture()
  const outcome = await runActivity(logger, 'wf.ok', async () => {
    logger.info('working')
    await tick()
    logger.info({ rows: 2 }, 'still working')
    return { status: 'ok', rows: 2 }
  })
  t.same(outcome, { ok: true, returnValues: { status: 'ok', rows: 2 } })
  t.same(lines(), [
    { level: 30, eventToken: 'wf.ok', msg: 'working' },
    { level: 30, eventToken: 'wf.ok', rows: 2, msg: 'still working' },
    { level: 30, eventToken: 'wf.ok', workflowEvent: { returnValues: { status: 'ok', rows: 2 } }, msg: 'Activity completed' }
  ])
})

t.test('with the log-method hook instead of the mixin: the same lines', async (t) => {
  const { logger, lines } = capture({ mixin: undefined, mixinMergeStrategy: undefined, hooks: { logMethod: eventTokenLogMethod } })
  const outcome = await runActivity(logger, 'wf.hook', async () => {
    logger.info('working')
    await tick()
    logger.child({ step: 2 }).info({ rows: 2 }, 'still working')
    return { status: 'ok' }
  })
  t.same(outcome, { ok: true, returnValues: { status: 'ok' } })
  t.same(lines(), [
    { level: 30, eventToken: 'wf.hook', msg: 'working' },
    { level: 30, step: 2, eventToken: 'wf.hook', rows: 2, msg: 'still working' },
    { level: 30, eventToken: 'wf.hook', workflowEvent: { returnValues: { status: 'ok' } }, msg: 'Activity completed' }
  ])
})

t.test('a value that is not an object completes with no return values; a sync handler works too', async (t) => {
  const { logger, lines } = capture()
  for (const value of [undefined, null, 42, 'text', [1, 2]]) {
    t.same(await runActivity(logger, 'wf.value', () => value), { ok: true, returnValues: {} })
  }
  t.same(lines().map((l) => l.workflowEvent), Array(5).fill({ returnValues: {} }))
})

t.test('a throw: one error line that completes with what onError maps', async (t) => {
  const { logger, lines } = capture()
  const err = new TypeError('bad row')
  const outcome = await runActivity(logger, 'wf.fail', async () => {
    logger.info('about to fail')
    await tick()
    throw err
  }, { onError: (e) => ({ status: 'failed', reason: (e as Error).message }) })
  t.same(outcome, { ok: false, returnValues: { status: 'failed', reason: 'bad row' }, error: err })
  const [first, last] = lines()
  t.same(first, { level: 30, eventToken: 'wf.fail', msg: 'about to fail' })
  t.match(last, { level: 50, eventToken: 'wf.fail', workflowEvent: { returnValues: { status: 'failed', reason: 'bad row' } }, err: { type: 'TypeError', message: 'bad row' }, msg: 'Activity failed' })

  const sync = await runActivity(logger, 'wf.sync.throw', () => { throw new Error('at once') })
  t.same(sync.returnValues, {}, 'no onError: no return values')
  const asyncMap = await runActivity(logger, 'wf.async.map', () => Promise.reject(new Error('x')), { onError: async () => ({ status: 'mapped' }) })
  t.same(asyncMap.returnValues, { status: 'mapped' })
  const mapThrows = await runActivity(logger, 'wf.map.throws', () => { throw new Error('x') }, { onError: () => { throw new Error('in onError') } })
  t.same(mapThrows.returnValues, {}, 'the activity still completes')
  t.same(lines().slice(2).map((l) => [l.eventToken, l.workflowEvent]), [
    ['wf.sync.throw', { returnValues: {} }],
    ['wf.async.map', { returnValues: { status: 'mapped' } }],
    ['wf.map.throws', { returnValues: {} }]
  ])
})

t.test('the logger\'s errorKey, custom keys and messages', async (t) => {
  const { logger, lines } = capture({ errorKey: 'error' })
  await runActivity(logger, 'wf.keys', () => { throw new RangeError('out') }, { errorMessage: 'Import failed' })
  t.match(lines()[0], { error: { type: 'RangeError', message: 'out' }, msg: 'Import failed' })
  t.notOk('err' in lines()[0]!)

  const custom = capture()
  await runActivity(custom.logger, 'wf.custom', () => ({ a: 1 }), { tokenKey: 'bitrixToken', eventKey: 'done', message: 'Import finished' })
  t.same(custom.lines(), [{ level: 30, bitrixToken: 'wf.custom', done: { returnValues: { a: 1 } }, msg: 'Import finished' }])
})

t.test('a logger bound to the token: one token key; bound to another: refused', async (t) => {
  const { logger, raw } = capture()
  await runActivity(logger.child({ eventToken: 'wf.bound' }), 'wf.bound', () => ({ ok: 1 }))
  t.equal(raw[0]?.split('"eventToken":').length, 2, 'the key once')
  t.throws(() => runActivity(logger.child({ eventToken: 'wf.other' }), 'wf.bound', () => 0), {
    code: 'ERR_BITRIX24_INVALID_EVENT_TOKEN',
    message: /the logger given to runActivity is bound to another "eventToken"; pass the root logger/
  })
})

t.test('after completion the context is closed: work left behind logs without the token', async (t) => {
  const { logger, lines } = capture()
  let late!: Promise<void>
  await runActivity(logger, 'wf.closed', () => {
    late = new Promise((resolve) => setTimeout(() => {
      logger.info({ token: currentEventToken() ?? 'none' }, 'left behind')
      resolve()
    }, 5))
    return { done: true }
  })
  await late
  t.same(lines().map((l) => [l.msg, l.eventToken]), [['Activity completed', 'wf.closed'], ['left behind', undefined]])
  t.equal(lines()[1]?.token, 'none')
})

t.test('bad arguments throw at once, with codes', async (t) => {
  const { logger } = capture()
  t.throws(() => runActivity(logger, '' as string, () => 0), { code: 'ERR_BITRIX24_INVALID_EVENT_TOKEN' })
  t.throws(() => runActivity(logger, ['wf.a'] as unknown as string, () => 0), { code: 'ERR_BITRIX24_INVALID_EVENT_TOKEN' })
  t.throws(() => runActivity(logger, 'wf.a', 'nope' as unknown as () => 0), { name: 'TypeError', code: 'ERR_BITRIX24_INVALID_ARGUMENT', option: 'handler', message: /handler must be a function, got string/ })
  t.throws(() => runActivity({} as unknown as typeof logger, 'wf.a', () => 0), { name: 'TypeError', code: 'ERR_BITRIX24_INVALID_ARGUMENT', option: 'logger', message: /needs a pino logger .*got an object without info\(\) and error\(\)/ })
  t.throws(() => runActivity(null as unknown as typeof logger, 'wf.a', () => 0), { code: 'ERR_BITRIX24_INVALID_ARGUMENT', message: /got null/ })
  t.throws(() => runActivity('logger' as unknown as typeof logger, 'wf.a', () => 0), { code: 'ERR_BITRIX24_INVALID_ARGUMENT', message: /got string/ })
  t.throws(() => runActivity(logger, 'wf.a', () => 0, null as unknown as object), { name: 'TypeError', code: 'ERR_BITRIX24_INVALID_ARGUMENT', option: 'options', message: /got null/ })
  t.throws(() => runActivity(logger, 'wf.a', () => 0, 'x' as unknown as object), { code: 'ERR_BITRIX24_INVALID_ARGUMENT', message: /must be an object, got string/ })
  t.throws(() => runActivity(logger, 'wf.a', () => 0, { onError: {} as () => undefined }), { name: 'TypeError', option: 'onError', message: /"onError" must be a function, got object/ })
  t.throws(() => runActivity(logger, 'wf.a', () => 0, { message: 1 as unknown as string }), { option: 'message', message: /"message" must be a string, got number/ })
  t.throws(() => runActivity(logger, 'wf.a', () => 0, { errorMessage: null as unknown as string }), { code: 'ERR_BITRIX24_INVALID_OPTION', option: 'errorMessage' })
  t.throws(() => runActivity(logger, 'wf.a', () => 0, { tokenKey: '' }), { code: 'ERR_BITRIX24_INVALID_OPTION', option: 'tokenKey' })
  t.throws(() => runActivity(logger, 'wf.a', () => 0, { eventKey: '' }), { code: 'ERR_BITRIX24_INVALID_OPTION', option: 'eventKey' })
})

t.test('a logger that throws: the promise still resolves, with that error', async (t) => {
  const boom = new Error('serializer failed')
  const broken = { info: () => { throw boom }, error: () => {} }
  t.same(await runActivity(broken, 'wf.broken', () => ({ a: 1 })), { ok: false, returnValues: { a: 1 }, error: boom })
  const calls: unknown[][] = []
  const plain = { info: () => {}, error: (...args: unknown[]) => { calls.push(args) } }
  const err = new Error('x')
  await runActivity(plain, 'wf.plain', () => { throw err })
  t.same(calls, [[{ eventToken: 'wf.plain', workflowEvent: { returnValues: {} }, err }, 'Activity failed']], 'not a pino logger: errorKey err')
})
