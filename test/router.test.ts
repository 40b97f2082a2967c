import t, { type Test } from 'tap'
import { Formatter } from '../lib/format'
import { MAX_TOKEN_LENGTH, Router, UNFORMATTABLE_TEXT } from '../lib/router'
import { defaults } from '../lib/options'
import { harness } from './fixtures/harness'

const fmt = {
  messageFormat: '{level} {msg}',
  include: undefined,
  exclude: [],
  tokenKey: 'eventToken',
  eventKey: 'workflowEvent',
  errorStackFrames: 0
}

async function setup (t: Test, minLevel?: number, tokenKey = defaults.tokenKey, levels?: Record<string, number>) {
  const h = await harness(t, { tokenKey })
  const router = new Router({ tokenKey, eventKey: 'workflowEvent', minLevel, levels: levels === undefined ? undefined : { values: levels } }, new Formatter({ ...fmt, tokenKey }), h.delivery, h.stats)
  return { h, router }
}

t.test('lines are routed by their token; the others are counted, never thrown', async (t) => {
  const { h, router } = await setup(t)
  router.line('{"level":30,"msg":"no token here"}')
  router.line('not json at all, but mentions "eventToken"')
  router.line('"eventToken"')
  router.line('["eventToken"]')
  router.line('{"level":30,"eventToken":"","msg":"empty token"}')
  router.line('{"level":30,"eventToken":42,"msg":"not a string"}')
  router.line('{"level":30,"nested":{"eventToken":"wf.x"},"msg":"only top level counts"}')
  router.line('{"level":30,"eventToken":"wf.1","msg":"one"}')
  router.line('{"level":40,"eventToken":"wf.1","msg":"two"}')
  await h.delivery.flush()
  t.same(h.sim.entries('wf.1'), ['INFO one\nWARN two'])
  t.match(h.stats, { received: 9, skipped: 4, malformed: 3, delivered: 2 })
})

t.test('a custom token key', async (t) => {
  const { h, router } = await setup(t, undefined, 'bpToken')
  router.line('{"level":30,"eventToken":"wf.no","msg":"wrong key"}')
  router.line('{"level":30,"bpToken":"wf.yes","msg":"right key"}')
  await h.delivery.flush()
  t.same([...h.sim.allEntries().keys()], ['wf.yes'])
})

t.test('lines below the minimum level are skipped', async (t) => {
  const { h, router } = await setup(t, 40)
  router.line('{"level":30,"eventToken":"wf.1","msg":"info"}')
  router.line('{"level":50,"eventToken":"wf.1","msg":"error"}')
  router.line('{"level":"custom","eventToken":"wf.1","msg":"no numeric level: kept"}')
  await h.delivery.flush()
  t.same(h.sim.entries('wf.1'), ['ERROR error\nCUSTOM no numeric level: kept'])
})

t.test('levels written as labels (formatters.level) are filtered too', async (t) => {
  const { h, router } = await setup(t, 40)
  router.line('{"level":"info","eventToken":"wf.s","msg":"hidden"}')
  router.line('{"level":"debug","eventToken":"wf.s","msg":"hidden"}')
  router.line('{"level":"INFO","eventToken":"wf.s","msg":"hidden, whatever the case"}')
  router.line('{"level":"warn","eventToken":"wf.s","msg":"shown"}')
  router.line('{"level":"Fatal","eventToken":"wf.s","msg":"shown"}')
  router.line('{"level":"constructor","eventToken":"wf.s","msg":"unknown: kept"}')
  router.line('{"level":null,"eventToken":"wf.s","msg":"no level: kept"}')
  router.line('{"level":"info","eventToken":"wf.s","workflowEvent":true,"msg":"completes: kept"}')
  await h.delivery.flush()
  t.same(h.sim.entries('wf.s'), ['WARN shown\nFATAL shown\nCONSTRUCTOR unknown: kept\nno level: kept\nINFO completes: kept'], 'the completion carries the lines')
  t.match(h.sim.event('wf.s'), { logMessage: /\nINFO completes: kept$/ })
  t.match(h.stats, { received: 8, skipped: 3 })
})

t.test('labels of the logger\'s own levels', async (t) => {
  const { h, router } = await setup(t, 35, undefined, { info: 30, Notice: 35, error: 50 })
  router.line('{"level":"info","eventToken":"wf.c","msg":"hidden"}')
  router.line('{"level":"notice","eventToken":"wf.c","msg":"shown"}')
  router.line('{"level":"Notice","eventToken":"wf.c","msg":"shown"}')
  await h.delivery.flush()
  t.same(h.sim.entries('wf.c'), ['NOTICE shown\nNOTICE shown'])
})

t.test('the event key completes the activity, with or without return values', async (t) => {
  const { h, router } = await setup(t)
  router.line('{"level":30,"eventToken":"wf.a","workflowEvent":{"returnValues":{"ok":1}},"msg":"done a"}')
  router.line('{"level":30,"eventToken":"wf.b","workflowEvent":true,"msg":"done b"}')
  router.line('{"level":30,"eventToken":"wf.c","workflowEvent":{"returnValues":"not an object"},"msg":"done c"}')
  router.line('{"level":30,"eventToken":"wf.d","workflowEvent":false,"msg":"just a line"}')
  router.line('{"level":30,"eventToken":"wf.e","workflowEvent":null,"msg":"just a line"}')
  await h.delivery.flush()
  t.same(h.sim.event('wf.a')?.returnValues, { ok: 1 })
  t.same(h.sim.event('wf.b')?.returnValues, {})
  t.same(h.sim.event('wf.c')?.returnValues, {})
  t.equal(h.sim.event('wf.d'), undefined)
  t.equal(h.sim.event('wf.e'), undefined)
  t.same(h.sim.entries('wf.a'), ['INFO done a'])
})

t.test('a completing line passes the level filter: the workflow waits for it', async (t) => {
  const { h, router } = await setup(t, 40)
  router.line('{"level":30,"eventToken":"wf.lvl","workflowEvent":{"returnValues":{"ok":1}},"msg":"Import finished"}')
  await h.delivery.flush()
  t.same(h.sim.event('wf.lvl')?.returnValues, { ok: 1 })
})

t.test('only true or an object completes; other values are plain fields', async (t) => {
  const { h, router } = await setup(t)
  router.line('{"level":30,"eventToken":"wf.zero","workflowEvent":0,"msg":"zero"}')
  router.line('{"level":30,"eventToken":"wf.empty","workflowEvent":"","msg":"empty"}')
  await h.delivery.flush()
  t.equal(h.sim.event('wf.zero'), undefined)
  t.equal(h.sim.event('wf.empty'), undefined)
  t.same(h.sim.entries('wf.zero'), ['INFO zero'])
})

t.test('event tokens over MAX_TOKEN_LENGTH are dropped under their own reason, never queued', async (t) => {
  const { h, router } = await setup(t)
  const ok = 'wf.' + 'a'.repeat(MAX_TOKEN_LENGTH - 3)
  router.line(JSON.stringify({ level: 30, eventToken: ok, msg: 'longest token taken' }))
  // Distinct 20 KB tokens: each would hash like every other of its length.
  for (let i = 0; i < 200; i++) {
    const token = String(i).padStart(4, '0') + 'x'.repeat(20_000)
    router.line(JSON.stringify({ level: 30, eventToken: token, msg: 'too long' }))
  }
  router.line(JSON.stringify({ level: 30, eventToken: 'y'.repeat(MAX_TOKEN_LENGTH + 1), workflowEvent: true, msg: 'not even a completion' }))
  await h.delivery.flush()
  t.equal(h.sim.requests.length, 1, 'only the token within the limit was queued and sent')
  t.same(h.sim.entries(ok), ['INFO longest token taken'])
  t.equal(h.stats.dropped.tokenTooLong, 201)
  t.equal(h.sim.requests.length, 1, 'one request, for the real token')
  const drops = h.events.filter((e) => e.name === 'bitrix24:drop')
  t.equal(drops.length, 201, 'each drop is an event like any other')
  t.match(drops[0]?.payload, { reason: 'tokenTooLong', lines: 1, token: '0000xx…xxxx' }, 'with the token shortened')
  t.equal(h.stderr.length, 1, 'one stderr line')
  t.match(h.stderr[0], /lines whose event token is over 512 characters are dropped/)
})

t.test('a line that cannot be formatted is counted; a completion still completes', async (t) => {
  const { h, router } = await setup(t)
  const deep = '['.repeat(10_000) + ']'.repeat(10_000)
  router.line(`{"level":30,"eventToken":"wf.deep","msg":"plain","nested":${deep}}`)
  router.line(`{"level":30,"eventToken":"wf.done","workflowEvent":{"returnValues":{"rows":3}},"msg":"done","nested":${deep}}`)
  await h.delivery.flush()
  t.equal(h.stats.dropped.unformattable, 1, 'the plain line is dropped, counted')
  t.same(h.sim.entries('wf.deep'), [])
  t.same(h.sim.event('wf.done')?.returnValues, { rows: 3 }, 'the activity is completed')
  t.same(h.sim.entries('wf.done'), [UNFORMATTABLE_TEXT], 'with a fallback text')
  t.match(h.stats, { completions: 1, received: 2 })
  t.match(h.stderr.join(''), /a log line could not be formatted/)
})

t.test('only true or a plain object completes; return values must be a plain object', async (t) => {
  const { h, router } = await setup(t)
  router.line('{"level":30,"eventToken":"wf.arr","workflowEvent":[1],"msg":"an array is not an event"}')
  router.line('{"level":30,"eventToken":"wf.rv","workflowEvent":{"returnValues":[1,2]},"msg":"done"}')
  await h.delivery.flush()
  t.equal(h.sim.event('wf.arr'), undefined, 'workflowEvent: [1] does not complete')
  t.same(h.sim.entries('wf.arr'), ['INFO an array is not an event'])
  t.same(h.sim.event('wf.rv')?.returnValues, {}, 'an array of return values is not sent')
})

t.test('a line of only zero-width characters is not sent as a blank row', async (t) => {
  const h = await harness(t)
  const router = new Router({ tokenKey: 'eventToken', eventKey: 'workflowEvent', minLevel: undefined }, new Formatter({ ...fmt, messageFormat: '{msg}' }), h.delivery, h.stats)
  router.line(JSON.stringify({ level: 30, eventToken: 'wf.zw', msg: '\u200b\u200c\u200d\ufeff\u2060' }))
  await h.delivery.flush()
  t.equal(h.sim.requests.length, 0, 'no request')
  t.match(h.stats, { received: 1, skipped: 1, delivered: 0 })
})
