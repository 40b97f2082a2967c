import t from 'tap'
import { API_KEY, harness, settle, waitFor } from './fixtures/harness'
import { stub } from './fixtures/stub'

const A = 'wf.aaaaaaaaaaaa.token-a'
const B = 'wf.bbbbbbbbbbbb.token-b'
const C = 'wf.cccccccccccc.token-c'

t.test('a token\'s lines wait flushInterval, then go as one entry', async (t) => {
  const h = await harness(t, { flushInterval: 1000, maxTokens: 1 })
  h.delivery.add(A, 'line 1')
  h.clock.tick(500)
  h.delivery.add(A, 'line 2')
  await settle()
  t.equal(h.sim.requests.length, 0, 'nothing before the interval')
  h.clock.tick(500)
  await waitFor(() => h.stats.entries === 1, 'the entry')
  t.same(h.sim.entries(A), ['line 1\nline 2'])
  t.equal(h.stats.delivered, 2)
  t.same(h.stderr, [], 'nothing on stderr when all is well')
  h.delivery.add(B, 'b')
  t.equal(h.stats.dropped.overflow, 0, 'an idle token is forgotten: another fits under maxTokens 1')
})

t.test('interleaved tokens arrive per token, in order, in as few entries as the limits allow', async (t) => {
  const h = await harness(t, { flushInterval: 1000, concurrency: 2 }, { latency: 5 })
  for (let i = 0; i < 30; i++) {
    for (const token of [A, B, C]) h.delivery.add(token, `${token.slice(3, 7)} step ${i}`)
  }
  h.clock.tick(1000)
  await h.delivery.flush()
  for (const token of [A, B, C]) {
    const entries = h.sim.entries(token)
    t.equal(entries.length, 1, 'one entry per token')
    t.same(entries[0]?.split('\n'), Array.from({ length: 30 }, (_, i) => `${token.slice(3, 7)} step ${i}`))
  }
  t.ok(h.sim.stats().maxConcurrent <= 2, 'concurrency is a cap')
})

t.test('maxEntryBytes splits a burst; every entry fits; order holds; one request per token at a time', async (t) => {
  const h = await harness(t, { maxEntryBytes: 256, concurrency: 4 }, { latency: 3 })
  const lines = Array.from({ length: 200 }, (_, i) => `line ${i} ` + 'ж'.repeat(i % 20))
  for (const line of lines) h.delivery.add(A, line)
  await h.delivery.flush()
  const entries = h.sim.entries(A)
  t.ok(entries.length > 10, `split into ${entries.length} entries`)
  for (const e of entries) t.ok(Buffer.byteLength(e) <= 256, 'within maxEntryBytes')
  t.same(entries.join('\n').split('\n'), lines, 'nothing lost, nothing reordered')
  t.equal(h.sim.maxConcurrentPerToken(), 1)
})

t.test('a single over-long line is cut with a visible marker', async (t) => {
  const h = await harness(t, { maxEntryBytes: 300 })
  h.delivery.add(A, 'x'.repeat(1000))
  await h.delivery.flush()
  const [entry] = h.sim.entries(A)
  t.ok(Buffer.byteLength(entry as string) <= 300)
  t.match(entry, /… \[truncated \d+ bytes\]$/)
})

t.test('text is sanitised per entry and an entry that formats to nothing is not sent', async (t) => {
  const h = await harness(t)
  h.delivery.add(A, '  \u0007  ')
  h.delivery.add(B, 'see [timestamp=1]x[/timestamp] \u0001ok 😀')
  await h.delivery.flush()
  t.same(h.sim.entries(A), [])
  t.equal(h.stats.skipped, 1)
  t.same(h.sim.entries(B), ['see [\u200btimestamp=1]x[\u200b/timestamp] ok \ufffd'])
})

t.test('markup that grows an entry past maxEntryBytes is cut back', async (t) => {
  const h = await harness(t, { maxEntryBytes: 256 })
  h.delivery.add(A, '{=user:1}'.repeat(28))
  await h.delivery.flush()
  const [entry] = h.sim.entries(A)
  t.ok(Buffer.byteLength(entry as string) <= 256)
  t.match(entry, /truncated/)
})

t.test('round robin: a busy workflow cannot starve the others', async (t) => {
  const h = await harness(t, { maxEntryBytes: 256, concurrency: 1 }, { latency: 2 })
  for (let i = 0; i < 40; i++) h.delivery.add(A, `a${i} `.padEnd(200, '.'))
  h.delivery.add(B, 'b only')
  await h.delivery.flush()
  const order = h.sim.requests.map((r) => (r.body as { eventToken: string }).eventToken)
  t.ok(order.indexOf(B) <= 2, `B went as request #${order.indexOf(B) + 1} of ${order.length}`)
})

t.test('flush() resolves only after what was logged before it is delivered', async (t) => {
  const h = await harness(t, {}, { latency: 20 })
  h.delivery.add(A, 'one')
  h.delivery.add(B, 'two')
  await h.delivery.flush()
  t.same(h.sim.entries(A), ['one'])
  t.same(h.sim.entries(B), ['two'])
  const sent = h.sim.requests.length
  await h.delivery.flush()
  t.equal(h.sim.requests.length, sent, 'an empty flush resolves and sends nothing')
})

const keyCodes: Array<[number, string, RegExp]> = [
  [401, 'MISSING_API_KEY', /set option apiKey/],
  [401, 'INVALID_API_KEY', /issue a new key/],
  [401, 'INVALID_APP_KEY', /sessionToken/],
  [401, 'TOKEN_MISSING', /connect the portal/],
  [401, 'TOKEN_EXPIRED', /reauthorize \(\/v1\/oauth\/authorize\)/],
  [403, 'SCOPE_DENIED', /bizproc scope/],
  [403, 'OAUTH_REQUIRED', /app key/],
  [403, 'WRITE_BLOCKED_READONLY_KEY', /read-only/],
  [401, 'SOMETHING_NEW', /HTTP 401/]
]
for (const [status, code, advice] of keyCodes) {
  t.test(`${status} ${code} stops the key with one stderr line`, async (t) => {
    const h = await harness(t, { maxEntryBytes: 256, concurrency: 1 })
    h.sim.script({ status, code, hint: 'look here' })
    for (let i = 0; i < 20; i++) h.delivery.add(i % 2 === 0 ? A : B, `line ${i} `.padEnd(150, '-'))
    await h.delivery.flush()
    h.delivery.add(C, 'after the failure')
    t.equal(h.sim.requests.length, 1, 'nothing more is sent')
    t.equal(h.stderr.length, 1, 'one line, not one per entry')
    t.match(h.stderr[0], new RegExp(`HTTP ${status} ${code}`))
    t.match(h.stderr[0], advice)
    t.match(h.stderr[0], /server hint: look here/)
    t.equal(h.stats.dropped.auth, 21, 'every line counted')
    t.equal(h.events.filter((e) => e.name === 'bitrix24:authError').length, 1)
    t.notOk(h.stderr.join('').includes(API_KEY))
  })
}

t.test('a dead event token is dropped and remembered; other tokens flow', async (t) => {
  const h = await harness(t, { maxEntryBytes: 256 })
  h.sim.killToken(A)
  for (let i = 0; i < 10; i++) {
    h.delivery.add(A, `a${i} `.padEnd(120, '.'))
    h.delivery.add(B, `b${i} `.padEnd(120, '.'))
  }
  await h.delivery.flush()
  h.delivery.add(A, 'later')
  await h.delivery.flush()
  t.equal(h.sim.entries(B).join('\n').split('\n').length, 10, 'B complete')
  t.equal(h.stats.dropped.deadToken, 11)
  t.equal(h.sim.requests.filter((r) => (r.body as { eventToken: string }).eventToken === A).length, 1, 'A tried once')
  t.equal(h.stderr.length, 1)
  t.match(h.stderr[0], /event token wf.aaa…en-a: HTTP 403 BITRIX_ACCESS_DENIED/)
  t.notOk(h.stderr[0]?.includes(A), 'the token is shortened')
})

t.test('when every token is refused and none accepted, the scope is suspected', async (t) => {
  const h = await harness(t)
  h.sim.killToken(A)
  h.sim.killToken(B)
  h.delivery.add(A, 'a')
  await h.delivery.flush()
  t.equal(h.stderr.length, 1)
  h.delivery.add(B, 'b')
  await h.delivery.flush()
  t.match(h.stderr[1], /may lack the bizproc scope/)
})

t.test('one refused token at close, none accepted: the scope hint comes with close', async (t) => {
  const h = await harness(t)
  h.sim.killToken(A)
  h.delivery.add(A, 'a')
  await h.delivery.close()
  t.match(h.stderr.join(''), /may lack the bizproc scope/)
})

const rejected: Array<[number, string]> = [[400, 'MISSING_PARAMS'], [422, 'BITRIX_ERROR'], [404, 'NOT_FOUND'], [403, 'UNKNOWN_403']]
for (const [status, code] of rejected) {
  t.test(`${status} ${code} drops that entry only`, async (t) => {
    const h = await harness(t, { maxEntryBytes: 256 })
    h.sim.script({ status, code, token: A }, { status, code, token: A })
    h.delivery.add(A, 'bad one')
    h.delivery.add(B, 'fine')
    await h.delivery.flush()
    h.delivery.add(A, 'bad two')
    h.delivery.add(A, 'good three')
    h.clock.tick(2000)
    await h.delivery.flush()
    t.equal(h.stats.dropped.rejected, 3)
    t.same(h.sim.entries(B), ['fine'])
    t.equal(h.stderr.length, 1, 'reported once')
    t.match(h.stderr[0], new RegExp(`^pino-bitrix24-workflow: event token wf\\.aaa…en-a: HTTP ${status} ${code}: .*; the entry is dropped`))
  })
}

t.test('a 422 report names the token and the server\'s message, cleaned and capped, in one line of 200 characters', async (t) => {
  const h = await harness(t)
  h.sim.script({ status: 422, code: 'BITRIX_ERROR', message: 'Bitrix24 rejected the call: \u001b[2Jworkflow 42 is not running ' + 'x'.repeat(300) })
  h.delivery.add('wf.import.0042.aaaa', 'x')
  await h.delivery.flush()
  t.equal(h.stderr.length, 1)
  const line = h.stderr[0] as string
  t.match(line, /^pino-bitrix24-workflow: event token wf\.imp…aaaa: HTTP 422 BITRIX_ERROR: Bitrix24 refused the entry; the entry is dropped \(server message: Bitrix24 rejected the call: workflow 42 is not running x+…\n$/)
  t.ok(line.length <= 201, `${line.length} characters`)
})

t.test('an unparsable body is classified by its status', async (t) => {
  const h = await harness(t)
  h.sim.script({ status: 503, body: '<html>busy</html>' })
  h.delivery.add(A, 'x')
  await h.clock.runUntil(() => h.stats.entries === 1)
  t.equal(h.stats.retries, 1)
  t.match(h.stderr[0], /HTTP 503 HTTP_503/)
})

for (const [status, code] of [[502, 'BITRIX_UNAVAILABLE'], [500, 'INTERNAL_ERROR'], [503, 'OTHER_5XX'], [408, 'REQUEST_TIMEOUT']] as const) {
  t.test(`${status} ${code} is retried with backoff`, async (t) => {
    const h = await harness(t)
    h.sim.script({ status, code }, { status, code })
    h.delivery.add(A, 'x')
    await h.clock.runUntil(() => h.stats.entries === 1, 50)
    t.same(h.sim.entries(A), ['x'])
    t.equal(h.stats.retries, 2)
    t.equal(h.stderr.length, 1, 'the first occurrence is reported, repeats counted')
  })
}

t.test('retries are capped by maxRetries, then the entry is dropped and counted', async (t) => {
  const h = await harness(t, { maxRetries: 2 })
  const fault = { status: 502, code: 'BITRIX_UNAVAILABLE', token: A }
  h.sim.script(fault, fault, fault)
  h.delivery.add(A, 'doomed')
  h.delivery.add(B, 'fine')
  await h.clock.runUntil(() => h.stats.dropped.retriesExhausted === 1 && h.stats.entries === 1, 50)
  t.equal(h.sim.requests.filter((r) => (r.body as { eventToken: string }).eventToken === A).length, 3)
  t.match(h.stderr.join(''), /failed 3 times/)
})

t.test('a server-given delay is obeyed as given, never shortened', async (t) => {
  const h = await harness(t)
  h.sim.script({ status: 502, code: 'BITRIX_UNAVAILABLE', headers: { 'retry-after': '7' } })
  h.delivery.add(A, 'x')
  h.clock.tick(2000)
  await waitFor(() => h.stats.retries === 1, 'the first answer')
  h.clock.tick(6999)
  await settle()
  t.equal(h.sim.requests.length, 1, 'not before 7 s')
  h.clock.tick(1)
  await waitFor(() => h.stats.entries === 1, 'the retry')
})

const retryAfterForms: Array<[string, object]> = [
  ['Retry-After in seconds', { headers: { 'retry-after': '3' } }],
  ['Retry-After as an HTTP date', { headers: { 'retry-after': new Date(1_700_000_000_000 + 2000 + 3000).toUTCString() } }],
  ['error.retryAfter in the body', { retryAfter: 3 }]
]
for (const [name, fault] of retryAfterForms) {
  t.test(`429 with ${name} pauses all sending for that long`, async (t) => {
    const h = await harness(t)
    h.sim.script({ status: 429, code: 'RATE_LIMITED', token: A, ...fault })
    h.delivery.add(A, 'a')
    h.clock.tick(2000)
    await waitFor(() => h.stats.rateLimited === 1, 'the 429')
    h.delivery.add(B, 'b')
    h.clock.tick(2000)
    await settle()
    t.equal(h.sim.requests.length, 1, 'B waits too: the pause is per key')
    h.clock.tick(1000)
    await waitFor(() => h.stats.entries === 2, 'both after the pause')
    t.same([h.sim.entries(A), h.sim.entries(B)], [['a'], ['b']])
    t.equal(h.events.filter((e) => e.name === 'bitrix24:rateLimited').length, 1)
    t.equal(h.stats.retries, 0, 'a rate limit is no fault')
  })
}

t.test('504 QUEUE_TIMEOUT pauses like a 429; without a delay it backs off', async (t) => {
  const h = await harness(t)
  h.sim.script({ status: 504, code: 'QUEUE_TIMEOUT', retryAfter: 2 }, { status: 429, body: 'slow down' })
  h.delivery.add(A, 'a')
  await h.clock.runUntil(() => h.stats.entries === 1)
  t.equal(h.stats.rateLimited, 2)
})

t.test('a 429 storm in buffer mode delivers everything afterwards, in order', async (t) => {
  const h = await harness(t, { maxEntryBytes: 256 })
  const storm = Array.from({ length: 15 }, () => ({ status: 429, code: 'RATE_LIMITED', retryAfter: 1 }))
  h.sim.script(...storm)
  const sent: string[] = []
  for (let i = 0; i < 60; i++) {
    const token = [A, B, C][i % 3] as string
    const line = `${i} `.padEnd(100, '~')
    sent.push(line)
    h.delivery.add(token, line)
  }
  await h.clock.runUntil(() => h.stats.delivered === 60, 100)
  for (const [k, token] of [A, B, C].entries()) {
    t.same(h.sim.entries(token).join('\n').split('\n'), sent.filter((_, i) => i % 3 === k))
  }
  t.equal(h.stats.rateLimited, 15)
  t.equal(h.stderr.length, 1, 'one line for the whole storm')
})

t.test('drop mode: the limited entry and what queues during the pause are dropped; newer lines flow after', async (t) => {
  const h = await harness(t, { onRateLimit: 'drop', maxEntryBytes: 256, concurrency: 1 })
  h.sim.script({ status: 429, code: 'RATE_LIMITED', retryAfter: 5, token: A })
  h.delivery.add(A, 'limited')
  h.delivery.add(B, 'x'.repeat(200))
  h.delivery.add(B, 'queued behind')
  h.clock.tick(2000)
  h.delivery.add(C, 'pending')
  await waitFor(() => h.stats.rateLimited === 1, 'the 429')
  t.equal(h.stats.dropped.rateLimited, 4, 'the limited entry and everything queued or pending')
  h.delivery.add(C, 'during the pause')
  t.equal(h.stats.dropped.rateLimited, 5, 'and what arrives during the pause')
  h.clock.tick(5000)
  h.delivery.add(C, 'after the pause')
  await h.clock.runUntil(() => h.stats.entries === 1, 100)
  t.same(h.sim.entries(C), ['after the pause'])
  t.equal(h.stats.dropped.rateLimited, 5)
  t.match(h.stderr[0], /onRateLimit: drop/)
})

t.test('pacing keeps a 2 rps (burst 5) server at no 429s for 200 entries', async (t) => {
  const h = await harness(t, { maxRequestsPerSecond: 2, burst: 5, concurrency: 4 }, { rateLimit: { rps: 2, burst: 5 } })
  for (let i = 0; i < 200; i++) h.delivery.add(`wf.token.${i}`, `line ${i}`)
  const start = h.clock.now()
  h.clock.tick(2000)
  await h.clock.runUntil(() => h.stats.entries === 200, 250)
  const seconds = (h.clock.now() - start) / 1000
  t.equal(h.sim.stats().byCode.RATE_LIMITED ?? 0, 0, 'no 429')
  t.ok(seconds < 2 + 100 + 5, `took ${seconds} s of fake time (minimum ≈ 97.5 s + the interval)`)
})

t.test('adaptive pacing: after a 429 the requests per second stay under the halved rate; successes bring it back', async (t) => {
  // A server that drains 5 requests a second (half the configured 10) for its
  // first 10 s, answering 429 to any more; then it sets no limit. Counted per
  // second on the stub's fake clock, as the portal would count them.
  const T0 = 1_700_000_000_000
  const LIMITED_UNTIL = T0 + 10_000
  let level = 0
  let last = T0
  const limited = new Set<number>()
  const s = stub(t, { maxRequestsPerSecond: 10, burst: 1 }, (req, n) => {
    if (req.at >= LIMITED_UNTIL) return {}
    level = Math.max(0, level - (req.at - last) * 5 / 1000)
    last = req.at
    if (level + 1 > 1) {
      limited.add(n)
      return { status: 429, body: { success: false, error: { code: 'RATE_LIMITED' } } }
    }
    level++
    return {}
  })
  for (let i = 0; i < 200; i++) s.delivery.add(`wf.t.${i}`, `l${i}`)
  await s.clock.tickAsync(12_000)
  const sentIn = (from: number, to: number): number => s.requests.filter((r) => r.at >= from && r.at < to).length
  const first429 = s.requests.find((_, i) => limited.has(i + 1))?.at
  t.ok(first429 !== undefined && first429 < LIMITED_UNTIL - 5000, 'the full rate met a 429')
  for (let from = first429 as number; from + 1000 <= LIMITED_UNTIL; from += 1000) {
    const n = sentIn(from, from + 1000)
    t.ok(n <= 5, `${n} requests in the second from +${from - T0} ms`)
  }
  const requests = sentIn(first429 as number, LIMITED_UNTIL)
  t.ok(limited.size <= requests / 2, `${limited.size} of ${requests} requests met a 429`)
  const recovered = sentIn(LIMITED_UNTIL + 1000, LIMITED_UNTIL + 2000)
  t.ok(recovered >= 9, `${recovered} requests a second once the server no longer limits`)
  t.equal(s.stats.rateLimited, limited.size)
})

t.test('20 % 502 and 5 % dropped connections: every line arrives, in order, duplicates ≤ ambiguous retries', async (t) => {
  const h = await harness(t, { maxEntryBytes: 300, maxRetries: 10, concurrency: 4 },
    { faults: { status502Rate: 0.2, dropBeforeRate: 0.025, dropAfterRate: 0.025, seed: 7 } })
  const tokens = Array.from({ length: 8 }, (_, i) => `wf.fault.${i}`)
  const sent = new Map<string, string[]>(tokens.map((tk) => [tk, []]))
  for (let i = 0; i < 400; i++) {
    const token = tokens[i % tokens.length] as string
    const line = `${token} #${i} `.padEnd(60, '.')
    sent.get(token)?.push(line)
    h.delivery.add(token, line)
  }
  await h.clock.runUntil(() => h.stats.delivered === 400, 50)
  let duplicates = 0
  for (const token of tokens) {
    // An entry written twice shows up as the same entry twice in a row.
    const entries = h.sim.entries(token)
    const unique = entries.filter((entry, i) => i === 0 || entries[i - 1] !== entry)
    duplicates += entries.length - unique.length
    t.same(unique.join('\n').split('\n'), sent.get(token), `${token}: all lines, in order`)
  }
  t.ok(h.stats.retries > 0, `${h.stats.retries} retries`)
  t.ok(h.sim.stats().byCode.DROPPED_AFTER > 0, 'some requests landed and lost their answer')
  t.ok(duplicates <= h.stats.possibleDuplicates, `${duplicates} duplicated entries, ${h.stats.possibleDuplicates} ambiguous retries`)
  t.equal(h.sim.maxConcurrentPerToken(), 1)
})

t.test('retryAmbiguous: false drops a request that may have landed instead of risking a duplicate', async (t) => {
  const h = await harness(t, { retryAmbiguous: false })
  h.sim.script({ drop: 'after' }, { drop: 'before' })
  h.delivery.add(A, 'maybe landed')
  await h.delivery.flush()
  t.equal(h.stats.dropped.ambiguous, 1)
  t.same(h.sim.entries(A), ['maybe landed'], 'it had in fact landed')
  t.match(h.stderr[0], /retryAmbiguous is off/)
})

t.test('a refused connection is retried as safe (never a duplicate)', async (t) => {
  const h = await harness(t)
  await h.sim.close()
  h.delivery.add(A, 'x')
  await h.clock.runUntil(() => h.stats.retries === 2, 50)
  t.equal(h.stats.possibleDuplicates, 0)
  t.match(h.stderr[0], /ECONNREFUSED: the server could not be reached/)
})

t.test('a stalled server cannot grow memory past maxBufferedBytes: the oldest lines go first', async (t) => {
  const h = await harness(t, { maxBufferedBytes: 65536, maxEntryBytes: 256, concurrency: 2 })
  h.sim.stall(true)
  const line = 'y'.repeat(99)
  // Nothing is delivered (the server stalls): every line not dropped is held, queued or in flight.
  let peak = 0
  for (let i = 0; i < 20000; i++) {
    h.delivery.add(`wf.stall.${i % 10}`, line)
    peak = Math.max(peak, i + 1 - h.stats.dropped.overflow)
  }
  t.ok(peak * (line.length + 1) <= 65536, `at most ${peak} lines of ${line.length + 1} bytes held at once`)
  t.ok(h.stats.dropped.overflow > 15000, `${h.stats.dropped.overflow} overflow drops`)
  t.equal(h.stderr.filter((l) => /maxBufferedBytes/.test(l)).length, 1)
})

t.test('overflow with only pending lines drops the oldest token\'s', async (t) => {
  const h = await harness(t, { maxBufferedBytes: 65536, maxEntryBytes: 65535, flushInterval: 60000 })
  const line = 'z'.repeat(1000)
  for (let i = 0; i < 70; i++) h.delivery.add(`wf.pending.${i}`, line)
  // Token strings count too: 70 × (1,001 + 13) bytes is 5,444 over, and each token dropped frees 1,014.
  t.equal(h.stats.dropped.overflow, 6)
  t.same(h.events.filter((e) => e.name === 'bitrix24:drop').map((e) => (e.payload as { token: string }).token), Array.from({ length: 6 }, (_, i) => `wf.pending.${i}`), 'the oldest tokens\' lines')
  await h.delivery.flush()
  t.equal(h.stats.entries, 64, 'the other 64 are delivered')
})

t.test('maxTokens caps the tokens tracked at once', async (t) => {
  const h = await harness(t, { maxTokens: 2 })
  h.delivery.add(A, 'a')
  h.delivery.add(B, 'b')
  h.delivery.add(C, 'c')
  t.equal(h.stats.dropped.overflow, 1)
  await h.delivery.flush()
  t.same(h.sim.entries(C), [])
})

t.test('completion: the event carries the earlier lines in its own message; later lines dropped once-reported', async (t) => {
  const h = await harness(t, {}, { latency: 5 })
  h.delivery.add(A, 'step 1')
  h.delivery.add(A, 'step 2')
  h.delivery.complete(A, 'done', { status: 'ok' })
  h.delivery.add(A, 'too late 1')
  h.delivery.add(A, 'too late 2')
  await h.delivery.flush()
  const paths = h.sim.requests.map((r) => r.path)
  t.same(paths, ['/v1/workflows/event'], 'one request and one row')
  t.same(h.sim.entries(A), ['step 1\nstep 2\ndone'])
  t.same(h.sim.event(A), { eventToken: A, returnValues: { status: 'ok' }, logMessage: 'step 1\nstep 2\ndone' })
  t.equal(h.stats.delivered, 3)
  t.equal(h.stats.rows, 1)
  t.equal(h.stats.dropped.completed, 2)
  t.equal(h.stats.completions, 1)
  t.equal(h.stderr.length, 1)
  t.match(h.stderr[0], /after its activity was completed/)
  t.ok(h.events.some((e) => e.name === 'bitrix24:completed'))
})

t.test('a failed completion is reported on stderr and as an event', async (t) => {
  const h = await harness(t)
  h.sim.script({ status: 422, code: 'BITRIX_ERROR', path: '/v1/workflows/event' })
  h.delivery.complete(A, 'done', {})
  await h.delivery.flush()
  t.match(h.stderr.join(''), /could not be completed \(rejected BITRIX_ERROR\); complete it by hand/)
  t.ok(h.events.some((e) => e.name === 'bitrix24:completionFailed'))
})

t.test('close() delivers what is queued and says nothing when all went well', async (t) => {
  const h = await harness(t)
  h.delivery.add(A, 'last words')
  await h.delivery.close()
  t.same(h.sim.entries(A), ['last words'])
  t.same(h.stderr, [])
  const stats = h.events.find((e) => e.name === 'bitrix24:stats')
  t.match(stats?.payload, { delivered: 1, entries: 1 })
  h.delivery.add(A, 'after close')
  t.equal(h.stats.dropped.shutdown, 1, 'lines after close are counted')
  const counted = JSON.stringify(h.stats)
  const sent = h.sim.requests.length
  await h.delivery.close()
  t.equal(JSON.stringify(h.stats), counted, 'a second close counts nothing more')
  t.equal(h.sim.requests.length, sent, 'and sends nothing')
  t.same(h.stderr, [], 'and says nothing')
})

t.test('close() under a stalled server gives up at closeTimeout and counts shutdown drops', async (t) => {
  const h = await harness(t, { closeTimeout: 3000, maxEntryBytes: 256 })
  h.sim.stall(true)
  for (let i = 0; i < 10; i++) h.delivery.add(i < 5 ? A : B, `l${i} `.padEnd(120, '.'))
  const closing = h.delivery.close()
  await waitFor(() => h.sim.requests.length === 2, 'two stalled requests')
  h.clock.tick(3000)
  await closing
  // Two lines fit an entry: the two entries in flight may have landed, the rest was never sent.
  t.equal(h.stats.dropped.shutdown, 6)
  t.equal(h.stats.unknown, 4)
  t.match(h.stderr.at(-1), /closed: delivered 0 lines in 0 entries; dropped 6 lines \(shutdown 6\); outcome unknown for 4 lines \(in flight at closeTimeout: they may have arrived\)/)
})

t.test('entries in flight at closeTimeout are of unknown outcome, never dropped: the server has them', async (t) => {
  const h = await harness(t, { closeTimeout: 1000, concurrency: 4 }, { latency: 60_000 })
  for (const token of [A, B, C]) for (let i = 0; i < 3; i++) h.delivery.add(token, `${token.slice(3, 7)} ${i}`)
  const closing = h.delivery.close()
  await waitFor(() => h.sim.requests.length === 3, 'three requests in flight')
  h.clock.tick(1000)
  await closing
  t.equal(h.stats.unknown, 9, 'every line in flight')
  t.equal(h.stats.delivered, 0)
  t.same(Object.values(h.stats.dropped).reduce((a, b) => a + b, 0), 0, 'nothing counted as dropped')
  t.equal([...h.sim.allEntries().values()].flat().join('\n').split('\n').length, 9, 'the server received every line')
  t.match(h.stderr.at(-1), /closed: delivered 0 lines in 0 entries; dropped 0 lines; outcome unknown for 9 lines \(in flight at closeTimeout: they may have arrived\)/)
  t.notOk(h.events.some((e) => e.name === 'bitrix24:drop'), 'no drop event')
  t.match(h.events.filter((e) => e.name === 'bitrix24:stats').at(-1)?.payload, { unknown: 9, dropped: { shutdown: 0 } })
})

t.test('close() does not wait out a rate-limit pause longer than the time left', async (t) => {
  const h = await harness(t, { closeTimeout: 2000 })
  h.sim.script({ status: 429, code: 'RATE_LIMITED', retryAfter: 60 })
  h.delivery.add(A, 'a')
  h.clock.tick(2000)
  await waitFor(() => h.stats.rateLimited === 1, 'the 429')
  await h.delivery.close()
  t.equal(h.stats.dropped.shutdown, 1)
})

t.test('a 429 met while closing, pausing past the deadline, ends the wait at once', async (t) => {
  const h = await harness(t, { closeTimeout: 2000 })
  h.sim.script({ status: 429, code: 'RATE_LIMITED', retryAfter: 60 })
  h.delivery.add(A, 'a')
  await h.delivery.close()
  t.equal(h.stats.dropped.shutdown, 1)
})

t.test('a retry due after the close deadline is dropped at once', async (t) => {
  const h = await harness(t, { closeTimeout: 2000 })
  h.sim.script({ status: 502, code: 'BITRIX_UNAVAILABLE', retryAfter: 30, headers: { 'retry-after': '30' } })
  h.delivery.add(A, 'a')
  await h.delivery.close()
  t.equal(h.stats.dropped.shutdown, 1)
  t.match(h.stderr.join(''), /closed: .*shutdown 1/)
})

t.test('a retry waiting when the deadline comes is abandoned', async (t) => {
  const h = await harness(t, { closeTimeout: 3000 })
  h.sim.script({ status: 502, code: 'BITRIX_UNAVAILABLE', headers: { 'retry-after': '2' } }, { stall: true })
  h.delivery.add(A, 'a')
  h.clock.tick(2000)
  await waitFor(() => h.stats.retries === 1, 'the first answer')
  const closing = h.delivery.close()
  h.clock.tick(2000)
  await waitFor(() => h.sim.requests.length === 2, 'the stalled retry')
  h.clock.tick(1000)
  await closing
  t.equal(h.stats.unknown, 1, 'the retry was in flight: it may have landed')
  t.equal(h.stats.dropped.shutdown, 0)
})

t.test('the server\'s warning is passed on once', async (t) => {
  const h = await harness(t)
  h.sim.script({ status: 422, code: 'BITRIX_ERROR', warning: 'you have a bug' }, { status: 422, code: 'BITRIX_ERROR', warning: 'you have a bug' })
  h.delivery.add(A, 'a')
  await h.delivery.flush()
  h.delivery.add(A, 'b')
  h.clock.tick(2000)
  await h.delivery.flush()
  t.equal(h.stderr.filter((l) => /the server warns: you have a bug/.test(l)).length, 1)
})

t.test('stderr stays quiet under a flood of different problems: a few lines a minute', async (t) => {
  const h = await harness(t)
  for (let i = 0; i < 12; i++) h.sim.script({ status: 450 + i, code: `CODE_${i}` })
  for (let i = 0; i < 12; i++) h.delivery.add(`wf.flood.${i}`, 'x')
  await h.delivery.flush()
  t.ok(h.stderr.length <= 6, `${h.stderr.length} lines`)
  await h.delivery.close()
  t.match(h.stderr.at(-1), /further problem lines were suppressed/)
})

t.test('a key failure also ends a retry that was waiting', async (t) => {
  const h = await harness(t, { concurrency: 2 })
  h.sim.script({ status: 502, code: 'BITRIX_UNAVAILABLE', token: A }, { status: 401, code: 'INVALID_API_KEY', token: B, delay: 20 })
  h.delivery.add(A, 'a')
  h.delivery.add(B, 'b')
  h.clock.tick(2000)
  await waitFor(() => h.stats.dropped.auth === 2, 'both dropped')
  h.clock.tick(60_000)
  await settle()
  t.equal(h.sim.requests.length, 2, 'the waiting retry never went')
})

t.test('a thousand workflows at once go through the round-robin queue', async (t) => {
  const h = await harness(t, { concurrency: 8, maxTokens: 1100 })
  for (let i = 0; i < 1100; i++) h.delivery.add(`wf.many.${i}`, `line ${i}`)
  await h.delivery.flush()
  t.equal(h.stats.entries, 1100)
  for (let i = 0; i < 1100; i++) h.delivery.add(`wf.more.${i}`, `line ${i}`)
  t.equal(h.stats.dropped.overflow, 0, 'the delivered tokens are forgotten: 1,100 new ones fit under maxTokens')
})

t.test('a failure inside delivery is reported, never an unhandled rejection', async (t) => {
  const { Delivery } = await import('../lib/delivery')
  const { parseOptions } = await import('../lib/options')
  const { Reporter } = await import('../lib/reporter')
  const { createStats } = await import('../lib/stats')
  const lines: string[] = []
  const clock = { now: () => 0, setTimeout: () => 0, clearTimeout: () => {}, unref: () => {} }
  // A network layer that breaks its promise never to reject.
  const broken = {
    post: async () => { throw new Error('broken sender') },
    destroy: async () => {}
  }
  const d = new Delivery(parseOptions({ apiKey: API_KEY, maxRequestsPerSecond: 0 }, {}), broken, clock,
    new Reporter((l) => { lines.push(l) }, clock), () => {}, createStats())
  d.add(A, 'x')
  d.flush().catch(() => {})
  await waitFor(() => lines.length === 1, 'the report')
  t.match(lines[0], /internal error while delivering: broken sender/)
})

t.test('dead tokens are remembered up to maxTokens, the oldest forgotten first', async (t) => {
  const h = await harness(t, { maxTokens: 1 })
  h.sim.killToken(A)
  h.sim.killToken(B)
  h.delivery.add(A, 'a')
  await h.delivery.flush()
  h.delivery.add(B, 'b')
  await h.delivery.flush()
  h.delivery.add(A, 'a again')
  await h.delivery.flush()
  t.equal(h.sim.requests.length, 3, 'A was forgotten and tried again')
  h.delivery.complete(A, 'done', {})
  t.equal(h.stats.dropped.deadToken, 4, 'a completion for a dead token is dropped too')
})

t.test('a completion that overflows the buffer, or is cut off by shutdown, is reported', async (t) => {
  const h = await harness(t, { maxBufferedBytes: 65536, maxEntryBytes: 40000, closeTimeout: 1000 })
  h.sim.stall(true)
  h.delivery.add(A, 'a'.repeat(39000))
  h.delivery.complete(B, 'b'.repeat(39000), {})
  t.equal(h.stats.dropped.overflow, 1, 'the oldest line went, not the completion')
  h.delivery.complete(C, 'c'.repeat(39000), {})
  t.equal(h.stats.dropped.overflow, 1, 'completions are kept even over the cap')
  const closing = h.delivery.close()
  await waitFor(() => h.sim.requests.length === 2, 'the stalled completions')
  h.clock.tick(1000)
  await closing
  const err = h.stderr.join('')
  t.notMatch(err, /could not be completed/, 'a completion in flight may have landed: not "complete it by hand"')
  t.equal(err.match(/may or may not be completed: its request was in flight when closeTimeout ran out/g)?.length, 2)
  t.match(h.events.filter((e) => e.name === 'bitrix24:completionFailed').map((e) => e.payload), [
    { token: B, reason: 'shutdown', outcome: 'unknown' }, { token: C, reason: 'shutdown', outcome: 'unknown' }])
})

t.test('a completing token takes no more lines even once the memory of completed tokens has moved on', async (t) => {
  const h = await harness(t, { maxTokens: 2 })
  h.sim.script({ token: A, delay: 200 })
  h.delivery.complete(A, 'done a', {})
  h.delivery.complete(B, 'done b', {})
  await waitFor(() => h.stats.completions === 1, 'b completed')
  h.delivery.complete(C, 'done c', {})
  h.delivery.add(A, 'too late for a')
  t.equal(h.stats.dropped.completed, 1)
  await h.delivery.flush()
  t.same(h.sim.entries(A), ['done a'])
})

t.test('delivered entries are let go of, not kept for the life of the process', async (t) => {
  const h = await harness(t, { concurrency: 2, maxTokens: 200 })
  for (let i = 0; i < 200; i++) h.delivery.add(`wf.keep.${i}`, `line ${i}`)
  await h.delivery.flush()
  t.equal(h.stats.entries, 200)
  t.equal(h.sim.requests.length, 200, 'one request each, every one answered')
  t.equal(h.stats.unknown, 0)
  for (let i = 0; i < 200; i++) h.delivery.add(`wf.next.${i}`, `line ${i}`)
  t.equal(h.stats.dropped.overflow, 0, 'their tokens are forgotten: 200 new ones fit under maxTokens')
})

t.test('a request in flight when the key fails is settled as auth, whatever it answers', async (t) => {
  const h = await harness(t, { concurrency: 2 })
  h.sim.script({ status: 401, code: 'INVALID_API_KEY', token: A }, { status: 502, code: 'BITRIX_UNAVAILABLE', token: B, delay: 30 })
  h.delivery.add(A, 'a')
  h.delivery.add(B, 'b')
  await h.delivery.flush()
  t.equal(h.stats.dropped.auth, 2)
  t.equal(h.events.filter((e) => e.name === 'bitrix24:authError').length, 1, 'one authError event, however many answers')
})

t.test('concurrent 429s slow the pace once, and a pause without a delay lasts at least a second', async (t) => {
  const h = await harness(t, { concurrency: 4, maxRequestsPerSecond: 100, burst: 10 })
  for (let i = 0; i < 4; i++) h.sim.script({ status: 429, code: 'RATE_LIMITED', token: `wf.burst.${i}`, delay: 5 })
  for (let i = 0; i < 4; i++) h.delivery.add(`wf.burst.${i}`, 'x')
  h.clock.tick(2000)
  await waitFor(() => h.stats.rateLimited === 4, 'four 429s')
  h.clock.tick(999)
  await settle()
  t.equal(h.sim.requests.length, 4, 'nothing within the second')
  await h.clock.runUntil(() => h.stats.entries === 4, 10)
  const [first, ...rest] = h.sim.requests.slice(4).map((r) => r.at)
  const gaps = rest.map((at, i) => at - ((i === 0 ? first : rest[i - 1]) as number))
  t.ok(gaps.every((g) => g <= 30), `paced at half the rate, not a sixteenth: ${gaps.join(',')} ms apart`)
})

t.test('an eviction while sealing cannot split a token into two queues', async (t) => {
  const h = await harness(t, { flushInterval: 10000, maxBufferedBytes: 65536, maxEntryBytes: 16384, concurrency: 4 }, { latency: 20 })
  const S = 'wf.ssssssssssss.token-s'
  for (const k of ['A', 'B', 'C', 'D']) for (let i = 0; i < 15; i++) h.delivery.add(`wf.${k}.token`, k.repeat(999))
  h.clock.tick(1000)
  // Markup grows by a third when neutralised: sealing this entry overflows the buffer.
  h.delivery.add(S, '{=user:1}'.repeat(555))
  h.delivery.add(S, 'L1 ' + 'y'.repeat(11500))
  h.delivery.add(S, 'L2 after')
  await h.delivery.flush()
  const lines = h.sim.entries(S).join('\n').split('\n').map((l) => l.slice(0, 8))
  t.same(lines.filter((l) => l.startsWith('L')), ['L1 yyyyy', 'L2 after'], 'in order')
  t.equal(h.sim.maxConcurrentPerToken(), 1)
  await h.delivery.close()
  t.equal(h.stats.dropped.shutdown, 0, 'nothing was left to give up on at close')
})

t.test('an entry never outgrows maxEntryBytes, even when sanitising keeps its length in characters', async (t) => {
  const h = await harness(t, { maxEntryBytes: 256 })
  h.delivery.add(A, '\u0001{=user:1}'.repeat(25) + 'xxxxxx')
  await h.delivery.flush()
  const [entry] = h.sim.entries(A)
  t.ok(Buffer.byteLength(entry as string) <= 256, `${Buffer.byteLength(entry as string)} bytes`)
})

t.test('over the cap, the oldest lines go first, pending or sealed', async (t) => {
  const h = await harness(t, { flushInterval: 10000, maxBufferedBytes: 65536, maxEntryBytes: 16384 })
  h.sim.stall(true)
  h.delivery.add(A, 'oldest line')
  h.clock.tick(1000)
  for (let i = 0; i < 70; i++) h.delivery.add(B, `b${i} ` + 'x'.repeat(995))
  const first = h.events.find((e) => e.name === 'bitrix24:drop')
  t.match(first?.payload, { reason: 'overflow', token: A, lines: 1 }, 'events carry the full token')
})

t.test('a completion refused before it is queued is reported like any failed completion', async (t) => {
  const h = await harness(t, { maxTokens: 1 })
  h.delivery.add(A, 'a')
  h.delivery.complete(B, 'done b', {})
  t.equal(h.stats.dropped.overflow, 0, 'the token cap does not refuse a completion')
  await h.delivery.flush()
  h.sim.killToken(C)
  h.delivery.add(C, 'c')
  await h.delivery.flush()
  h.delivery.complete(C, 'done c', {})
  t.match(h.events.filter((e) => e.name === 'bitrix24:completionFailed').map((e) => e.payload), [{ reason: 'deadToken' }])
  t.match(h.stderr.join(''), /event token wf.ccc…en-c could not be completed \(deadToken\)/)
})

t.test('failed completions: the first three named on stderr, the rest counted, within the one budget', async (t) => {
  const h = await harness(t)
  for (let i = 0; i < 10; i++) h.sim.script({ status: 422, code: 'BITRIX_ERROR', path: '/v1/workflows/event' })
  for (let i = 0; i < 10; i++) h.delivery.complete(`wf.budget.${i}.tokenxyz`, 'done', {})
  await h.delivery.flush()
  t.equal(h.stderr.filter((l) => /could not be completed \(rejected BITRIX_ERROR\)/.test(l)).length, 3)
  t.equal(h.stderr.filter((l) => /more activities could not be completed/.test(l)).length, 1)
  t.equal(h.stats.completionsFailed, 10)
})

t.test('a completion whose text came out empty is sent without a log message', async (t) => {
  const h = await harness(t)
  h.delivery.complete(A, '\u0007', { ok: true })
  await h.delivery.flush()
  t.same(h.sim.requests[0]?.body, { eventToken: A, returnValues: { ok: true } })
})

t.test('eviction takes a token\'s oldest pending lines; the token stays one queue', async (t) => {
  const h = await harness(t, { maxBufferedBytes: 80000, maxEntryBytes: 16384, concurrency: 4 })
  h.sim.stall(true)
  for (const k of ['A', 'B', 'C', 'D']) h.delivery.add(`wf.${k}.token`, k.repeat(15000))
  h.clock.tick(2000)
  await waitFor(() => h.sim.requests.length === 4, 'four stalled requests')
  const S = 'wf.ssssssssssss.token-s'
  h.delivery.add(S, 'L'.repeat(9000))
  h.delivery.add(S, 'M'.repeat(9000))
  t.equal(h.stats.dropped.overflow, 0)
  h.delivery.add(S, 'N'.repeat(9000))
  t.equal(h.stats.dropped.overflow, 1, 'the oldest pending line went; entries in flight stay')
  t.match(h.events.find((e) => e.name === 'bitrix24:drop')?.payload, { reason: 'overflow', token: S, lines: 1 })
  h.delivery.add(S, 'after')
  const closing = h.delivery.close()
  h.clock.tick(5000)
  await closing
  t.equal(h.stats.dropped.shutdown, 3, 'every line accounted for once: S\'s pending lines dropped')
  t.equal(h.stats.unknown, 4, 'and the four entries in flight of unknown outcome')
  // The aborted requests answer after close: their entries were settled already, nothing is counted twice.
  await settle()
  t.equal(h.stats.unknown, 4)
  t.equal(h.stats.dropped.shutdown + h.stats.dropped.overflow, 4)
})

t.test('statsInterval: the counters go out while they change, and stop with close', async (t) => {
  const h = await harness(t, { statsInterval: 10000 })
  const stats = (): number => h.events.filter((e) => e.name === 'bitrix24:stats').length
  h.clock.tick(10000)
  t.equal(stats(), 1, 'the first interval reports the starting counters')
  h.clock.tick(10000)
  t.equal(stats(), 1, 'nothing happened: nothing is emitted')
  h.delivery.add(A, 'x')
  await h.delivery.flush()
  h.clock.tick(10000)
  t.equal(stats(), 2)
  t.match(h.events.at(-1)?.payload, { entries: 1, dropped: { overflow: 0 } })
  await h.delivery.close()
  t.equal(stats(), 3, 'and once more at close')
  h.clock.tick(60000)
  t.equal(stats(), 3, 'the timer is gone')
})

t.test('20 workflows at 4 lines/s for 15 s against 2 requests/s (bucket 50): every line, few entries, closed in time', async (t) => {
  // The portal's own limit (a bucket of 50 that drains 2 a second, 150 ms an
  // answer), kept by the stub on the fake clock; the transport has its
  // default options. Once a child app over 15 s of real time; the exit path
  // of an app is exit.test.ts's.
  let level = 0
  let last: number | undefined
  const limited = new Set<number>()
  const s = stub(t, {}, (req, n) => {
    level = Math.max(0, level - (req.at - (last ?? req.at)) * 2 / 1000)
    last = req.at
    if (level + 1 > 50) {
      limited.add(n)
      return { status: 429, retryAfter: '1' }
    }
    level++
    return {}
  })
  const tokens = Array.from({ length: 20 }, (_, k) => `wf.many.${k}`)
  for (let step = 0; step < 60; step++) {
    for (const token of tokens) s.delivery.add(token, `step ${step}`)
    await s.clock.tickAsync(250)
  }
  const closeTimeout = 5000
  const start = s.clock.now()
  const closed = { at: undefined as number | undefined }
  const closing = s.delivery.close().then(() => { closed.at = s.clock.now() })
  while (closed.at === undefined && s.clock.now() - start <= 2 * closeTimeout) await s.clock.tickAsync(50)
  await closing
  const closedAt = closed.at
  for (const token of tokens) {
    t.same(s.delivered(token), Array.from({ length: 60 }, (_, i) => `step ${i}`), `${token}: every line, in order`)
    const entries = s.requests.filter((r, i) => r.token === token && !limited.has(i + 1)).length
    t.ok(entries <= 5, `${token}: ${entries} entries`)
  }
  t.equal(limited.size, 0, 'the default pace meets no 429')
  t.ok((closedAt as number) - start <= closeTimeout, `closed ${(closedAt as number) - start} ms after the last line`)
  t.same(s.stderr, [], 'nothing to report')
})

t.test('X-RateLimit headers of a real answer steer the pace before any 429', async (t) => {
  const h = await harness(t, { concurrency: 1 })
  h.sim.script({ status: 200, headers: { 'X-RateLimit-Limit': '300', 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': '5' } })
  h.delivery.add(A, 'a')
  h.delivery.add(B, 'b')
  h.clock.tick(2000)
  await waitFor(() => h.sim.requests.length === 1, 'the first request')
  await settle()
  h.clock.tick(4000)
  await settle()
  t.equal(h.sim.requests.length, 1, 'the window is spent: B waits for its reset')
  h.clock.tick(1000)
  await waitFor(() => h.sim.requests.length === 2, 'B after the reset')
  t.equal(h.stats.rateLimited, 0)
})

t.test('flush() waits for an older entry in flight while an overflow evicts newer lines of the token', async (t) => {
  const s = stub(t, { maxBufferedBytes: 65536, maxEntryBytes: 1024, flushInterval: 100 }, () => ({ latency: 60_000 }))
  for (let i = 1; i <= 5; i++) s.delivery.add('wf.a', `a${i}`)
  await s.clock.tickAsync(200)
  t.equal(s.requests.length, 1, 'a1-a5 in flight')
  for (let i = 6; i <= 10; i++) s.delivery.add('wf.a', `a${i}`)
  let flushed = false
  const flushing = s.delivery.flush().then(() => { flushed = true })
  // Over maxBufferedBytes: the pending lines of wf.a (a6 on) are evicted, and finish, before a1-a5.
  for (let i = 11; i <= 40; i++) s.delivery.add('wf.a', `a${i} ${'x'.repeat(900)}`)
  for (let i = 0; i < 200; i++) s.delivery.add('wf.b', `b${i} ${'y'.repeat(900)}`)
  await s.clock.tickAsync(10)
  t.ok(s.stats.dropped.overflow > 0, `${s.stats.dropped.overflow} lines evicted`)
  t.equal(flushed, false, 'not while a1-a5 are in flight: a completion sent by hand now could overtake them')
  await s.clock.tickAsync(60_000)
  await flushing
  t.same(s.delivered('wf.a').slice(0, 5), ['a1', 'a2', 'a3', 'a4', 'a5'])
})

t.test('a flood of completions into a stalled server is held back at twice maxTokens and twice maxBufferedBytes', async (t) => {
  const s = stub(t, { maxTokens: 10, maxBufferedBytes: 65536 }, () => ({ latency: 600_000 }))
  for (let i = 0; i < 5000; i++) s.delivery.complete(`wf.flood.${i}`, 'done', {})
  t.equal(s.stats.dropped.overflow, 4980, 'twice maxTokens (20) taken: a completion is not refused for the cap alone')
  t.equal(s.events.filter((e) => e.name === 'bitrix24:completionFailed').length, 4980, 'each one named: it must be completed by hand')
  const m = stub(t, { maxTokens: 100000, maxBufferedBytes: 65536, maxEntryBytes: 4096 }, () => ({ latency: 600_000 }))
  for (let i = 0; i < 5000; i++) m.delivery.complete(`wf.big.${i}`, 'x'.repeat(100_000), {})
  // Each completion is cut to maxEntryBytes; none is delivered (the server holds them): what was taken is held.
  const taken = 5000 - m.stats.dropped.overflow
  t.ok(taken * 4096 <= 2 * 65536, `${taken} completions of 4,096 bytes held`)
  t.ok(m.stats.dropped.overflow > 4900, `${m.stats.dropped.overflow} refused`)
})

t.test('the key revoked with 5,000 completions pending: stderr stays within its budget, every completion counted', async (t) => {
  const h = await harness(t, { apiKey: 'vibe_api_revoked_key', flushInterval: 0 }, { latency: 50 })
  const tokens = Array.from({ length: 5000 }, (_, i) => `wf.revoked.${i}`)
  for (const token of tokens) h.delivery.complete(token, 'done', { ok: true })
  await waitFor(() => h.stats.completionsFailed === 5000, 'every completion given up on', 20_000)
  await h.delivery.close()
  // Six problem lines a minute, and the closing summary.
  t.ok(h.stderr.length <= 7, `${h.stderr.length} stderr lines`)
  t.match(h.stderr.join(''), /INVALID_API_KEY/)
  t.match(h.stderr.at(-1), /closed: .*dropped 5000 lines \(auth 5000\).*; 5000 completions not done: complete by hand/)
  const stats = h.events.filter((e) => e.name === 'bitrix24:stats').at(-1)?.payload as { completionsFailed: number, failedCompletions: Array<{ token: string }> }
  t.equal(stats.completionsFailed, 5000)
  const listed = new Set(stats.failedCompletions.map((c) => c.token))
  t.equal(listed.size, 1000, 'their tokens, listed up to a bound')
  t.ok([...listed].every((token) => tokens.includes(token)))
  t.equal(h.events.filter((e) => e.name === 'bitrix24:completionFailed').length, 5000, 'each one in its event')
})
