import t from 'tap'
import { LocalBudget, type RequestBudget } from '../lib/request-budget'
import { stub } from './fixtures/stub'

// Scheduling against a stub server on a fake clock: every assertion counts
// requests, because requests are what a portal's 2/s budget is made of.

const A = 'wf.aaaaaaaaaaaa.token-a'
const B = 'wf.bbbbbbbbbbbb.token-b'
const C = 'wf.cccccccccccc.token-c'

t.test('one token, a request in flight for 10 s, 21 lines: 2 requests', async (t) => {
  const s = stub(t, {}, (_req, n) => ({ latency: n === 1 ? 10_000 : 150 }))
  s.delivery.add(A, 'line 0')
  await s.clock.tickAsync(2000)
  t.equal(s.requests.length, 1, 'the first line went after flushInterval')
  for (let i = 1; i <= 20; i++) {
    s.delivery.add(A, `line ${i}`)
    await s.clock.tickAsync(400)
  }
  await s.clock.tickAsync(5000)
  t.equal(s.requests.length, 2, 'lines that waited behind the request went as one entry')
  t.same(s.delivered(A), Array.from({ length: 21 }, (_, i) => `line ${i}`), 'every line, in order')
  t.equal(s.stats.entries, 2)
})

t.test('one 30 s rate-limit pause over 60 lines: 3 requests, the limited entry resent unchanged', async (t) => {
  const s = stub(t, {}, (_req, n) => n === 1
    ? { status: 429, retryAfter: '30', body: { success: false, error: { code: 'RATE_LIMITED', retryAfter: 30 } } }
    : {})
  for (let i = 0; i < 60; i++) {
    s.delivery.add(A, `line ${i}`)
    await s.clock.tickAsync(500)
  }
  await s.clock.tickAsync(40_000)
  t.ok(s.requests.length <= 3, `${s.requests.length} requests`)
  t.equal(s.requests[1]?.text, s.requests[0]?.text, 'the retry resends identical text')
  t.same(s.delivered(A), Array.from({ length: 60 }, (_, i) => `line ${i}`), 'every line, in order')
  t.equal(s.stats.rateLimited, 1)
})

t.test('a server that always says 429 Retry-After: 0, pacing off: no loop', async (t) => {
  const s = stub(t, { maxRequestsPerSecond: 0 }, () => ({ status: 429, retryAfter: '0', latency: 5, body: { success: false, error: { code: 'RATE_LIMITED' } } }))
  s.delivery.add(A, 'line')
  await s.clock.tickAsync(60_000)
  // A floor of 1 s and growing backoff: at most one request a second, far fewer as it backs off.
  t.ok(s.requests.length <= 20, `${s.requests.length} requests in 60 s`)
  t.ok(s.requests.length >= 3, 'it does keep trying')
  for (let i = 1; i < s.requests.length; i++) {
    const gap = (s.requests[i]?.at as number) - (s.requests[i - 1]?.at as number)
    if (gap < 1000) t.fail(`request ${i + 1} came ${gap} ms after the one before`)
  }
  t.equal(s.stderr.filter((l) => /RATE_LIMITED/.test(l)).length, 1, 'one line on stderr')
})

t.test('a Retry-After date in the past is no delay either', async (t) => {
  const s = stub(t, { maxRequestsPerSecond: 0 }, () => ({ status: 429, retryAfter: 'Wed, 21 Oct 2015 07:28:00 GMT', latency: 5, body: { success: false, error: { code: 'RATE_LIMITED' } } }))
  s.delivery.add(A, 'line')
  await s.clock.tickAsync(30_000)
  t.ok(s.requests.length <= 15, `${s.requests.length} requests in 30 s`)
})

t.test('fairness: ready tokens go longest-waiting first; a flooding workflow gets one turn per round', async (t) => {
  // One request at a time, 1 request/s: a shortfall.
  const s = stub(t, { concurrency: 1, maxRequestsPerSecond: 1, burst: 1, maxEntryBytes: 1024 }, () => ({ latency: 100 }))
  // A floods: far more than one entry's worth, ready at once (a full entry).
  for (let i = 0; i < 60; i++) s.delivery.add(A, `a${i} `.padEnd(100, '.'))
  await s.clock.tickAsync(10)
  s.delivery.add(B, 'b 1')
  await s.clock.tickAsync(500)
  s.delivery.add(C, 'c 1')
  await s.clock.tickAsync(20_000)
  const order = s.requests.map((r) => r.token)
  // A goes at 0, 1 and 2 s (ready again each time its request ends); B became ready at
  // 2.01 s (flushInterval) and goes next, at 3 s; A, ready since 2.1 s, at 4 s; C,
  // ready since 2.51 s, at 5 s.
  t.same(order.slice(0, 6), [A, A, A, B, A, C], 'each token in the order it became ready; A one turn at a time')
  const a = s.of(A)
  t.equal(a.length, 6, '60 lines of 100 bytes in six 1 KB entries')
  t.equal(s.delivered(A).length, 60)
})

t.test('no starvation: many tokens under a shortfall each get a turn per round', async (t) => {
  const s = stub(t, { concurrency: 2, maxRequestsPerSecond: 2, burst: 2 })
  const tokens = Array.from({ length: 20 }, (_, i) => `wf.fair.${i}`)
  // 20 workflows log 4 lines a second each for 15 s: 80 lines/s against 2 requests/s.
  for (let step = 0; step < 60; step++) {
    for (const token of tokens) s.delivery.add(token, `${token} ${step}`)
    await s.clock.tickAsync(250)
  }
  const closing = s.delivery.close()
  await s.clock.tickAsync(5000)
  await closing
  for (const token of tokens) {
    t.equal(s.delivered(token).length, 60, `${token}: all lines`)
    t.ok(s.of(token).length <= 3, `${token}: ${s.of(token).length} entries`)
  }
  t.equal(s.stats.dropped.shutdown, 0)
})

t.test('a completion carries every earlier line in its own message; lines after it are dropped', async (t) => {
  const s = stub(t)
  s.delivery.add(A, 'one')
  s.delivery.add(A, 'two')
  s.delivery.complete(A, 'done', { ok: true })
  s.delivery.add(A, 'too late')
  await s.clock.tickAsync(2000)
  t.same(s.requests.map((r) => [r.path, r.text]), [
    ['/v1/workflows/event', 'one\ntwo\ndone']
  ])
  t.same(s.requests[0]?.returnValues, { ok: true })
  t.equal(s.stats.dropped.completed, 1)
  t.equal(s.stats.completions, 1)
})

t.test('a second completion of the same token is counted, not reported as a failed completion', async (t) => {
  const s = stub(t)
  s.delivery.complete(A, 'done', {})
  s.delivery.complete(A, 'done again', {})
  await s.clock.tickAsync(1000)
  t.equal(s.requests.length, 1)
  t.equal(s.stats.dropped.completed, 1)
  t.notMatch(s.stderr.join(''), /could not be completed/)
  t.same(s.events.filter((e) => e.name === 'bitrix24:completionFailed'), [])
  t.match(s.events.find((e) => e.name === 'bitrix24:drop')?.payload, { reason: 'completed', token: A, lines: 1 })
})

t.test('close spends what the server allows, ignoring client pacing, within closeTimeout', async (t) => {
  // Client pacing at 1/s with no burst left: 20 tokens would take 20 s paced.
  const s = stub(t, { maxRequestsPerSecond: 1, burst: 1, concurrency: 4, closeTimeout: 5000 })
  for (let i = 0; i < 20; i++) s.delivery.add(`wf.close.${i}`, `line ${i}`)
  const start = s.clock.now()
  let done = false
  const closing = s.delivery.close().then(() => { done = true })
  await s.clock.tickAsync(1000)
  t.ok(done, 'closed within a second: 20 requests at concurrency 4 and 150 ms each')
  await closing
  t.equal(s.requests.length, 20)
  t.ok((s.requests.at(-1)?.at as number) - start < 1000)
  t.equal(s.stats.delivered, 20)
  t.same(s.stderr, [], 'nothing to report')
})

t.test('close: the server\'s 429s still slow it, and the deadline still holds', async (t) => {
  let limited = 0
  const s = stub(t, { maxRequestsPerSecond: 1, burst: 1, concurrency: 4, closeTimeout: 5000 }, (req) => {
    if (req.token === 'wf.close.0' && limited++ === 0) return { status: 429, retryAfter: '2', body: { success: false, error: { code: 'RATE_LIMITED' } } }
    return {}
  })
  for (let i = 0; i < 8; i++) s.delivery.add(`wf.close.${i}`, `line ${i}`)
  const start = s.clock.now()
  const closing = s.delivery.close()
  await s.clock.tickAsync(6000)
  await closing
  t.equal(s.stats.delivered, 8)
  const after = s.requests.filter((r) => r.at > start + 150)
  t.ok(after.every((r) => r.at >= start + 2150), 'nothing went during the server\'s pause')
})

t.test('a budget that holds while closing (shared with other processes) is never bypassed', async (t) => {
  let granted = 0
  const budget = new LocalBudget(1, 1, { now: () => 0, setTimeout: () => undefined, clearTimeout: () => {}, unref: () => {} }, 30_000)
  const shared: RequestBudget = {
    take: (now) => { const wait = granted < 2 ? 0 : 1000 - (now % 1000); if (wait === 0) granted++; return wait },
    slowDown: () => {},
    speedUp: () => {},
    pause: (until) => { budget.pause(until) },
    pausedUntil: () => budget.pausedUntil(),
    observe: () => {},
    onChange: () => {},
    giveBack: () => {},
    close: async () => {},
    holdsWhileClosing: () => true
  }
  const s = stub(t, { concurrency: 4 }, () => ({}), shared)
  for (let i = 0; i < 6; i++) s.delivery.add(`wf.shared.${i}`, 'x')
  s.delivery.flush().catch(() => {})
  await s.clock.tickAsync(500)
  t.equal(s.requests.length, 2, 'flush took only what the shared budget granted')
})

t.test('flush() bypasses client pacing too, and pacing applies again after', async (t) => {
  const s = stub(t, { maxRequestsPerSecond: 1, burst: 1, concurrency: 4 })
  for (let i = 0; i < 8; i++) s.delivery.add(`wf.flush.${i}`, 'x')
  let flushed = false
  const flushing = s.delivery.flush().then(() => { flushed = true })
  await s.clock.tickAsync(400)
  await flushing
  t.ok(flushed, 'eight requests in 400 ms, not eight seconds')
  for (let i = 0; i < 4; i++) s.delivery.add(`wf.paced.${i}`, 'y')
  await s.clock.tickAsync(2100)
  t.equal(s.requests.length, 9, 'paced again after the flush: one slot refilled (burst 1), one request')
  await s.clock.tickAsync(1000)
  t.equal(s.requests.length, 10, 'then one a second')
  await s.clock.tickAsync(5000)
  t.equal(s.requests.length, 12)
})

t.test('X-RateLimit-Remaining: 0 pauses until the reset, before any 429', async (t) => {
  const s = stub(t, { concurrency: 1 }, (_req, n) => n === 1 ? { headers: { limit: '300', remaining: '0', reset: '10' } } : {})
  s.delivery.add(A, 'a')
  s.delivery.add(B, 'b')
  await s.clock.tickAsync(2200)
  t.equal(s.requests.length, 1)
  await s.clock.tickAsync(9000)
  t.equal(s.requests.length, 1, 'waits for the window to reset')
  await s.clock.tickAsync(2000)
  t.equal(s.requests.length, 2)
  t.equal(s.stats.rateLimited, 0, 'no 429 met')
})

t.test('X-RateLimit-Remaining low: what is left is spread over the window', async (t) => {
  const s = stub(t, { concurrency: 4, maxRequestsPerSecond: 5, burst: 5 }, () => ({ headers: { limit: '300', remaining: '3', reset: '30' } }))
  for (let i = 0; i < 6; i++) s.delivery.add(`wf.rl.${i}`, 'x')
  await s.clock.tickAsync(2200)
  const first = s.requests.length
  await s.clock.tickAsync(5000)
  t.ok(s.requests.length - first <= 2, `${s.requests.length - first} requests in 5 s after the server said 3 were left for 30 s`)
})

t.test('a backlog is told once on stderr and in bitrix24:stats', async (t) => {
  const s = stub(t, { concurrency: 1, maxRequestsPerSecond: 0.5, burst: 1, statsInterval: 5000 })
  for (let step = 0; step < 40; step++) {
    for (let i = 0; i < 10; i++) s.delivery.add(`wf.backlog.${i}`, `line ${step}`)
    await s.clock.tickAsync(1000)
  }
  const told = s.stderr.filter((l) => /request budget cannot keep up/.test(l))
  t.equal(told.length, 1, 'once')
  t.match(told[0], /\d+ workflows wait for a request slot, the oldest line \d+ s; log fewer lines per workflow/)
  const stats = s.events.filter((e) => e.name === 'bitrix24:stats').map((e) => e.payload as { waitingTokens: number, oldestWaitingMs: number })
  const last = stats.at(-1)
  t.ok(last !== undefined && last.waitingTokens > 0, `${last?.waitingTokens} tokens waiting`)
  t.ok(last !== undefined && last.oldestWaitingMs > 10_000, `oldest line waited ${last?.oldestWaitingMs} ms`)
  t.equal(s.stats.dropped.overflow, 0, 'told before any line is lost')
})

t.test('the scheduler spends exactly the one budget it is given, and re-checks when it changes', async (t) => {
  let listener = (): void => {}
  let open = false
  const calls: string[] = []
  const budget: RequestBudget = {
    take: () => { calls.push('take'); return open ? 0 : 60_000 },
    slowDown: () => { calls.push('slowDown') },
    speedUp: () => { calls.push('speedUp') },
    pause: () => { calls.push('pause') },
    pausedUntil: () => 0,
    observe: (limit, remaining) => { calls.push(`observe ${limit} ${remaining}`) },
    onChange: (fn) => { listener = fn },
    giveBack: () => { calls.push('giveBack') },
    close: async () => { calls.push('close') },
    holdsWhileClosing: () => false
  }
  const s = stub(t, {}, () => ({ headers: { limit: '300', remaining: '299', reset: '60' } }), budget)
  s.delivery.add(A, 'a')
  await s.clock.tickAsync(3000)
  t.equal(s.requests.length, 0, 'the budget said no')
  open = true
  listener()
  await s.clock.tickAsync(200)
  t.equal(s.requests.length, 1, 'its change was heard at once')
  t.ok(calls.includes('observe 300 299'), 'rate-limit headers reach it')
  t.ok(calls.includes('speedUp'))
  const closing = s.delivery.close()
  await s.clock.tickAsync(100)
  await closing
  t.equal(calls.at(-1), 'close')
})

t.test('LocalBudget: the pacer and the pause behind the RequestBudget interface', async (t) => {
  let now = 0
  const clock = { now: () => now, setTimeout: () => 0, clearTimeout: () => {}, unref: () => {} }
  const b = new LocalBudget(2, 2, clock, 30_000)
  let heard = 0
  b.onChange(() => { heard++ })
  t.equal(b.take(0), 0)
  t.equal(b.take(0), 0)
  t.equal(b.take(0), 500, 'burst spent')
  b.pause(5000)
  t.equal(b.pausedUntil(), 5000)
  t.equal(b.take(1000), 0, 'the pause is the scheduler\'s to check (pausedUntil), not take\'s: the pacer alone answers')
  b.pause(2000)
  t.equal(b.pausedUntil(), 5000, 'a pause is never shortened')
  b.slowDown(5000)
  t.equal(b.take(5000), 1000, 'halved to 1/s, the burst spent')
  b.speedUp()
  t.equal(b.take(5000), 834, 'a tenth back: 1.2/s')
  now = 6000
  b.observe(300, 0, 100_000)
  t.equal(b.pausedUntil(), 36_000, 'nothing left: paused until the reset, at most maxPause')
  b.observe(0, 1, 200_000)
  b.observe(300, -1, 200_000)
  b.observe(300, 1, 5000)
  t.equal(b.pausedUntil(), 36_000, 'unusable headers change nothing')
  t.equal(heard, 0, 'nothing here changes by itself')
  await b.close()
})

t.test('a completion still queued when closeTimeout runs out could not be completed: complete it by hand', async (t) => {
  const s = stub(t, { closeTimeout: 1000 }, () => ({ latency: 60_000 }))
  s.delivery.add(A, 'a line that stalls')
  // Its entry goes (and stalls) before the completion is queued, so the completion cannot carry it.
  await s.clock.tickAsync(2000)
  s.delivery.complete(A, 'done', {})
  const closing = s.delivery.close()
  await s.clock.tickAsync(1000)
  await closing
  t.equal(s.requests.length, 1, 'the completion never went')
  t.match(s.stderr.join(''), /could not be completed \(shutdown\); complete it by hand/)
  t.match(s.events.filter((e) => e.name === 'bitrix24:completionFailed').map((e) => e.payload), [{ token: A, outcome: 'failed' }])
  t.equal(s.stats.dropped.shutdown, 1, 'the completion, never sent')
  t.equal(s.stats.unknown, 1, 'the line in flight')
})

t.test('5 workflows × 40 lines over 2 s, flushInterval 100, a healthy server, 8 s before exit: every line', async (t) => {
  const s = stub(t, { flushInterval: 100 })
  const tokens = Array.from({ length: 5 }, (_, i) => `wf.short.${i}`)
  for (let step = 0; step < 40; step++) {
    for (const token of tokens) s.delivery.add(token, `${token} ${step}`)
    await s.clock.tickAsync(50)
  }
  await s.clock.tickAsync(6000)
  const closing = s.delivery.close()
  await s.clock.tickAsync(5000)
  await closing
  for (const token of tokens) t.equal(s.delivered(token).length, 40, `${token}: all 40 lines`)
  t.ok(s.requests.length <= 25, `${s.requests.length} requests: paced at 2/s, lines packed while waiting`)
  t.equal(s.stats.dropped.shutdown, 0)
})

t.test('long token strings count against maxBufferedBytes', async (t) => {
  const s = stub(t, { maxBufferedBytes: 1024 * 1024 }, () => ({ latency: 60_000 }))
  for (let i = 0; i < 100; i++) s.delivery.add(`wf.${i}.`.padEnd(100_000, 'x'), 'tiny')
  // Nothing is delivered (the server holds every request): each token not dropped holds its 100,000 bytes.
  const held = 100 - s.stats.dropped.overflow
  t.ok(held * 100_000 <= 1024 * 1024, `${held} tokens of 100,000 bytes held`)
  t.ok(s.stats.dropped.overflow >= 89, `${s.stats.dropped.overflow} tokens' lines dropped: at most 11 queued, not 100`)
})

t.test('lines logged while close() waits are delivered at once, not lost uncounted; after the deadline they are dropped as shutdown', async (t) => {
  const s = stub(t, { closeTimeout: 5000 }, (req) => ({ latency: req.token === C ? 60_000 : 150 }))
  s.delivery.add(A, 'one')
  s.delivery.add(C, 'stalls')
  const closing = s.delivery.close()
  await s.clock.tickAsync(10)
  s.delivery.add(A, 'two')
  s.delivery.add(B, 'three')
  await s.clock.tickAsync(400)
  t.same(s.requests.map((r) => r.text), ['one', 'stalls', 'three', 'two'], 'no flushInterval while closing: one request each')
  await s.clock.tickAsync(5000)
  await closing
  t.same([s.delivered(A), s.delivered(B)], [['one', 'two'], ['three']])
  s.delivery.add(B, 'after')
  t.equal(s.stats.unknown, 1, 'the stalled line, in flight at the deadline')
  t.equal(s.stats.dropped.shutdown, 1, 'the one after close')
})

t.test('close() does not return before lines logged while it waited are delivered', async (t) => {
  const s = stub(t, { closeTimeout: 5000 })
  s.delivery.add(A, 'one')
  const closing = s.delivery.close()
  await s.clock.tickAsync(10)
  s.delivery.add(A, 'two')
  s.delivery.add(B, 'three')
  await s.clock.tickAsync(1000)
  await closing
  t.same([s.delivered(A), s.delivered(B)], [['one', 'two'], ['three']])
  t.equal(s.requests.length, 3, 'nothing left behind')
})

t.test('a request that completes a workflow goes before those that only log, also when it was already waiting', async (t) => {
  // One request at a time, paced at 1/s: a line of three tokens waits.
  const s = stub(t, { concurrency: 1, maxRequestsPerSecond: 1, burst: 1, flushInterval: 0 }, () => ({ latency: 100 }))
  s.delivery.add(A, 'a 1')
  s.delivery.add(B, 'b 1')
  s.delivery.add(C, 'c 1')
  await s.clock.tickAsync(10)
  // A went at once; B and C wait. C completes: it goes next, ahead of B.
  s.delivery.complete(C, 'c done', {})
  s.delivery.complete('wf.dddddddddddd.token-d', 'd done', {})
  await s.clock.tickAsync(5000)
  t.same(s.requests.map((r) => r.token), [A, C, 'wf.dddddddddddd.token-d', B])
  t.equal(s.requests[1]?.text, 'c 1\nc done')
})

t.test('a wait that gets shorter is not held to the longer timer armed before', async (t) => {
  let wait = 60_000
  const budget: RequestBudget = {
    take: () => wait,
    slowDown: () => {},
    speedUp: () => {},
    pause: () => {},
    pausedUntil: () => 0,
    observe: () => {},
    onChange: () => {},
    giveBack: () => {},
    close: async () => {},
    holdsWhileClosing: () => false
  }
  const s = stub(t, { flushInterval: 100, concurrency: 2 }, () => ({}), budget)
  s.delivery.add(A, 'a')
  await s.clock.tickAsync(1000)
  // The pace recovered: the budget now says 500 ms. The next pump hears it (here: B becoming ready).
  wait = 500
  s.delivery.add(B, 'b')
  await s.clock.tickAsync(200)
  wait = 0
  await s.clock.tickAsync(500)
  t.same(s.requests.map((r) => r.at - 1_700_000_000_000), [1600, 1600], 'both went when the shorter wait ended, not after 60 s')
})

t.test('an entry whose every line is blank after cleaning spends no request slot', async (t) => {
  const s = stub(t, { maxRequestsPerSecond: 1, burst: 1, flushInterval: 100 })
  s.delivery.add(A, '  \u0007  ')
  s.delivery.add(B, 'b')
  await s.clock.tickAsync(150)
  t.same(s.requests.map((r) => r.token), [B], 'B went at once on the one slot of the burst: A spent none')
  t.equal(s.stats.skipped, 1, 'the blank line is counted as skipped')
  s.delivery.add(C, 'c')
  await s.clock.tickAsync(500)
  t.equal(s.requests.length, 1, 'the slot B took is spent: C waits for the pace (1/s)')
  await s.clock.tickAsync(1000)
  t.same(s.requests.map((r) => r.token), [B, C])
})
