import t from 'tap'
import { FIRST_AGE, HARD_ENTRY_BYTES, HORIZON, RowBudget } from '../lib/row-budget'
import { stub, type Stub } from './fixtures/stub'

// The row budget on a fake clock: every case counts rows and requests, since
// a workflow keeps only its newest 50 rows and a portal drains 2 requests/s.

const A = 'wf.aaaaaaaaaaaa.token-a'
const B = 'wf.bbbbbbbbbbbb.token-b'

/** Rows the token wrote (entries and completions with a message), oldest first. */
function rows (s: Stub, token: string): string[] {
  return s.of(token).filter((r) => r.text !== undefined && r.text !== '').map((r) => r.text as string)
}

/** Line numbers (`line N …`) in the newest 50 rows of a token. */
function visible (s: Stub, token: string): Set<number> {
  const seen = new Set<number>()
  for (const row of rows(s, token).slice(-50)) for (const m of row.matchAll(/line (\d+)\b/g)) seen.add(Number(m[1]))
  return seen
}

/** Logs `total` lines, one every `everyMs`, then completes; returns each line's log time. */
async function activity (s: Stub, total: number, everyMs: number, text = (i: number) => `line ${i} progress`): Promise<number[]> {
  const at: number[] = []
  for (let i = 0; i < total; i++) {
    at.push(s.clock.now())
    s.delivery.add(A, text(i))
    await s.clock.tickAsync(everyMs)
  }
  s.delivery.complete(A, 'done', { ok: true })
  await s.clock.tickAsync(5000)
  return at
}

/** Delay of each delivered line, from its log time to the request that carried it. */
function delays (s: Stub, at: number[]): Array<{ age: number, delay: number }> {
  const out: Array<{ age: number, delay: number }> = []
  const sentAt = new Map<number, number>()
  for (const r of s.of(A)) for (const m of (r.text ?? '').matchAll(/line (\d+)\b/g)) if (!sentAt.has(Number(m[1]))) sentAt.set(Number(m[1]), r.at)
  at.forEach((time, i) => {
    const sent = sentAt.get(i)
    if (sent !== undefined) out.push({ age: time - (at[0] as number), delay: sent - time })
  })
  return out
}

/** Share of lines that waited longer than max(flushInterval, 35 % of the activity's age). */
function lateShare (list: Array<{ age: number, delay: number }>, flushInterval: number): number {
  return list.filter((d) => d.delay > Math.max(flushInterval, 0.35 * d.age)).length / list.length
}

t.test('the schedule: 40 rows plan 38, spaced by r ≈ 1.345 from 2 s to a day', async (t) => {
  const b = new RowBudget(40, 10)
  t.ok(b.on)
  t.equal(b.planned, 38)
  t.ok(Math.abs(b.ratio - Math.pow(HORIZON / FIRST_AGE, 1 / 36)) < 1e-12)
  t.ok(b.ratio > 1.34 && b.ratio < 1.35, `r = ${b.ratio}`)
  t.equal(b.due(0), 0, 'the first row waits for flushInterval only')
  t.equal(b.due(1), FIRST_AGE)
  t.ok(Math.abs(b.due(37) - HORIZON) < 1, 'the last planned row falls due at a day')
  t.equal(b.due(38), Infinity, 'past the plan: the completion, flush() or close()')
  const s = b.of(A, 1000)
  t.same(s, { start: 1000, used: 0, next: 1000 })
  t.equal(b.left(s), 39, 'the completion keeps its row')
  b.wrote(s, 3000)
  t.equal(s.next, 1000 + Math.max(FIRST_AGE, 2000 * b.ratio), 'r times the age, when later than the plan')
  b.wrote(s, 3000)
  t.equal(s.next, 1000 + FIRST_AGE * b.ratio, 'the plan, when later than r times the age')
  t.equal(b.of(A, 9999), s, 'kept for the token')
  b.forget(A)
  t.same(b.of(A, 9999), { start: 9999, used: 0, next: 9999 }, 'forgotten: it begins again')
  t.equal(new RowBudget(0, 10).on, false)
})

t.test('small budgets: nothing planned leaves the rows to the completion and the end', async (t) => {
  const one = new RowBudget(2, 10)
  t.equal(one.planned, 0)
  t.equal(one.of(A, 0).next, Infinity)
  const two = new RowBudget(4, 10)
  t.equal(two.planned, 2)
  t.equal(two.due(1), FIRST_AGE)
  t.equal(two.due(2), Infinity)
})

t.test('row state is kept for maxTokens tokens, the oldest forgotten first', async (t) => {
  const b = new RowBudget(40, 2)
  b.of('a', 0)
  b.of('b', 0)
  b.of('c', 0)
  t.equal(b.of('b', 5).start, 0, 'b kept')
  t.equal(b.of('a', 5).start, 5, 'a was forgotten: begins again')
})

t.test('rows restored from a spool: taken as they were, within maxTokens; anything else from disk is ignored', async (t) => {
  const budget = new RowBudget(10, 2)
  t.same(budget.restore(A, { start: 5, used: 3, next: Infinity }), { start: 5, used: 3, next: Infinity })
  t.same(budget.of(A, 1000), { start: 5, used: 3, next: Infinity }, 'the token goes on from there')
  for (const bad of [undefined, null, 'rows', { start: 'x', used: 1, next: 0 }, { start: 1, used: 1.5, next: 0 }, { start: 1, used: -1, next: 0 }, { start: 1, used: 1, next: NaN }, { start: 1, used: 1 }]) {
    t.equal(budget.restore(B, bad), undefined, JSON.stringify(bad) ?? 'undefined')
  }
  budget.restore(B, { start: 1, used: 1, next: 2 })
  budget.restore('wf.c', { start: 1, used: 1, next: 2 })
  t.same(budget.of(A, 1000), { start: 1000, used: 0, next: 1000 }, 'the oldest went')
  t.equal(new RowBudget(0, 2).restore(A, { start: 1, used: 1, next: 2 }), undefined, 'no budget: nothing kept')
})

t.test('3 lines and a completion cost 1 request and 1 row', async (t) => {
  const s = stub(t, { maxRows: 40 })
  s.delivery.add(A, 'one')
  s.delivery.add(A, 'two')
  s.delivery.add(A, 'three')
  s.delivery.complete(A, 'done', { ok: true })
  await s.clock.tickAsync(2000)
  t.same(s.requests.map((r) => [r.path, r.text]), [['/v1/workflows/event', 'one\ntwo\nthree\ndone']])
  t.equal(s.stats.rows, 1)
  t.equal(s.stats.delivered, 4)
})

t.test('a 1-hour activity at a line a second: ≤ 40 rows, every line in the newest 50, lines wait at most 35 % of the age', async (t) => {
  const s = stub(t, { maxRows: 40 })
  const at = await activity(s, 3600, 1000)
  t.ok(rows(s, A).length <= 40, `${rows(s, A).length} rows`)
  t.equal(s.requests.length, rows(s, A).length, 'one request per row')
  t.equal(visible(s, A).size, 3600, 'every line visible')
  t.equal(s.stats.dropped.omitted, 0)
  t.equal(s.stats.completions, 1)
  const late = lateShare(delays(s, at), 2000)
  t.equal(late, 0, 'no line waited past max(flushInterval, 35 % of its age)')
  t.equal(s.requests[0]?.at, at[0] as number + 2000, 'the first row after flushInterval')
})

t.test('a 24-hour activity at a line a second: ≤ 40 rows, the beginning and the end kept, what is left out named', async (t) => {
  const s = stub(t, { maxRows: 40 })
  const at = await activity(s, 86_400, 1000)
  const written = rows(s, A)
  t.ok(written.length <= 40, `${written.length} rows`)
  t.equal(s.stats.completions, 1, 'completed')
  const seen = visible(s, A)
  t.ok(seen.has(0), 'the first line')
  t.ok(seen.has(86_399), 'the newest line')
  const omitted = s.stats.dropped.omitted
  t.ok(omitted > 0)
  t.equal(seen.size + omitted, 86_400, 'every line is delivered or counted as omitted')
  const markers = written.join('\n').match(/^… [\d,]+ lines omitted …$/gm) ?? []
  const named = markers.reduce((n, m) => n + Number(m.replace(/\D/g, '')), 0)
  t.equal(named, omitted, 'the markers name every line left out')
  const drops = s.events.filter((e) => e.name === 'bitrix24:drop').map((e) => e.payload as { reason: string, lines: number })
  t.ok(drops.every((d) => d.reason === 'omitted'))
  t.equal(drops.reduce((n, d) => n + d.lines, 0), omitted, 'drop events for every line left out')
  t.match(s.stderr.join('\n'), /lines between its first and its newest ones were left out/)
  t.ok(lateShare(delays(s, at), 2000) <= 0.05, 'p95 of lines within max(flushInterval, 35 % of age)')
  for (const row of written) t.ok(Buffer.byteLength(row) < 65_535, 'each row fits the column')
  t.equal(s.delivery.rows.of(A, s.clock.now()).used, 0, 'the completed workflow\'s rows forgotten: its state begins again')
})

t.test('a flood that needs the marker: the beginning and the newest lines kept, whole lines only', async (t) => {
  const s = stub(t, { maxRows: 5 })
  const total = 5000
  for (let i = 0; i < total; i++) s.delivery.add(A, `line ${i} `.padEnd(100, '.'))
  await s.clock.tickAsync(2000)
  t.ok(s.requests.length >= 1, 'the first rows')
  for (let i = total; i < total + 5; i++) s.delivery.add(A, `line ${i} `.padEnd(100, '.'))
  s.delivery.complete(A, 'done', {})
  await s.clock.tickAsync(2000)
  const written = rows(s, A)
  t.ok(written.length <= 5, `${written.length} rows`)
  const all = written.join('\n').split('\n')
  for (const line of all) t.ok(/^line \d+ \.+$/.test(line) || /^… [\d,]+ lines omitted …$/.test(line) || line === 'done', 'a whole line or the marker')
  const seen = visible(s, A)
  t.ok(seen.has(0) && seen.has(total + 4), 'the first and the newest line')
  t.equal(seen.size + s.stats.dropped.omitted, total + 5)
  t.ok(s.stats.dropped.omitted > 0)
  t.equal(s.stats.completions, 1)
  t.ok(s.events.some((e) => e.name === 'bitrix24:drop' && (e.payload as { reason: string }).reason === 'omitted'))
})

t.test('flush() between rows sends at once and spends a row: the rows after it come later', async (t) => {
  const s = stub(t, { maxRows: 40 })
  for (let i = 0; i < 10; i++) {
    s.delivery.add(A, `line ${i}`)
    await s.clock.tickAsync(1000)
  }
  const before = s.requests.length
  const budget = s.delivery.rows.of(A, 0)
  const used = budget.used
  s.delivery.add(A, 'line 10')
  const flushed = s.delivery.flush()
  await s.clock.tickAsync(200)
  await flushed
  t.equal(s.requests.length, before + 1, 'the flush sent at once')
  t.equal(s.requests.at(-1)?.text, 'line 9\nline 10', 'every pending line')
  t.equal(budget.used, used + 1, 'and spent a row')
  t.ok(budget.next - budget.start >= s.delivery.rows.due(budget.used), 'the next row keeps to the plan')
  s.delivery.add(A, 'line 11')
  await s.clock.tickAsync(budget.next - s.clock.now() - 1)
  t.equal(s.requests.length, before + 1, 'nothing before the next row is due')
  await s.clock.tickAsync(2001)
  t.equal(s.requests.at(-1)?.text, 'line 11')
})

t.test('a completion when the budget is spent still gets its row and carries the lines', async (t) => {
  const s = stub(t, { maxRows: 3 })
  s.delivery.add(A, 'line 0')
  await s.clock.tickAsync(2500)
  t.equal(s.requests.length, 1, 'the one planned row')
  s.delivery.add(A, 'line 1')
  const flushed = s.delivery.flush()
  await s.clock.tickAsync(200)
  await flushed
  t.equal(s.requests.length, 2, 'the end row, spent by a flush')
  for (let i = 2; i < 100; i++) {
    s.delivery.add(A, `line ${i}`)
    await s.clock.tickAsync(1000)
  }
  t.equal(s.requests.length, 2, 'no rows left: lines wait for the end')
  s.delivery.complete(A, 'done', { ok: true })
  await s.clock.tickAsync(1000)
  t.equal(s.requests.length, 3)
  t.equal(s.requests[2]?.path, '/v1/workflows/event')
  t.equal(s.requests[2]?.text?.split('\n').length, 99, '98 lines and the completion, in one row')
  t.equal(s.stats.rows, 3)
  t.equal(s.stats.completions, 1)
})

t.test('a completion past its rows whose lines do not fit: the beginning, a marker and the newest lines, one request', async (t) => {
  const s = stub(t, { maxRows: 1 })
  for (let i = 0; i < 2000; i++) s.delivery.add(A, `line ${i} `.padEnd(100, '.'))
  await s.clock.tickAsync(10_000)
  t.equal(s.requests.length, 0, 'no log rows at all: only the completion\'s')
  s.delivery.complete(A, 'done', {})
  await s.clock.tickAsync(1000)
  t.equal(s.requests.length, 1)
  const text = s.requests[0]?.text as string
  t.ok(Buffer.byteLength(text) <= HARD_ENTRY_BYTES)
  t.match(text, /^line 0 \.+\n/)
  t.match(text, /\n… [\d,]+ lines omitted …\n/)
  t.match(text, /\nline 1999 \.+\ndone$/)
  t.equal(s.stats.completions, 1)
})

t.test('a line bigger than the room for the beginning is left out rather than split; the newest lines stay', async (t) => {
  const s = stub(t, { maxRows: 1, maxEntryBytes: 65_535 })
  const big = (i: number): string => `line ${i} `.padEnd(40_000, 'x')
  s.delivery.add(A, big(0))
  s.delivery.add(A, big(1))
  s.delivery.add(A, 'line 2 small')
  s.delivery.complete(A, 'done', {})
  await s.clock.tickAsync(1000)
  const text = s.requests[0]?.text as string
  t.match(text, /^… 1 line omitted …\nline 1 x+\nline 2 small\ndone$/)
  t.equal(s.stats.dropped.omitted, 1)
})

t.test('a completion whose lines outgrow its message sends them first while rows are left', async (t) => {
  const s = stub(t, { maxRows: 40 })
  for (let i = 0; i < 1000; i++) s.delivery.add(A, `line ${i} `.padEnd(100, '.'))
  s.delivery.complete(A, 'done', {})
  await s.clock.tickAsync(2000)
  const paths = s.requests.map((r) => r.path)
  t.equal(paths.pop(), '/v1/workflows/event')
  t.ok(paths.length >= 1 && paths.every((p) => p === '/v1/workflows/activity-log'), `${paths.length} log entries first`)
  t.ok(s.requests.every((r) => r.at === s.requests[0]?.at || r.at - (s.requests[0]?.at as number) < 1000), 'at once')
  t.equal(visible(s, A).size, 1000)
  t.equal(s.stats.dropped.omitted, 0)
  t.ok(s.requests.some((r) => Buffer.byteLength(r.text as string) > 16_384), 'sent at once, entries grow past maxEntryBytes')
})

t.test('maxRows: 0 turns the budget off: a row every flushInterval, as before', async (t) => {
  const s = stub(t, { maxRows: 0 })
  await activity(s, 600, 1000)
  t.ok(rows(s, A).length >= 290, `${rows(s, A).length} rows`)
  t.equal(s.delivery.rows.of(A, s.clock.now()).used, 0, 'no row counted against the token')
  t.equal(s.stats.dropped.omitted, 0)
})

t.test('with maxRows: 0 a completion still carries what fits maxEntryBytes, else the lines go first', async (t) => {
  const s = stub(t, { maxRows: 0, maxEntryBytes: 1024 })
  for (let i = 0; i < 30; i++) s.delivery.add(A, `line ${i} `.padEnd(100, '.'))
  s.delivery.complete(A, 'done', {})
  await s.clock.tickAsync(2000)
  t.same(s.requests.map((r) => r.path), ['/v1/workflows/activity-log', '/v1/workflows/activity-log', '/v1/workflows/event'])
  t.equal(s.requests[2]?.text?.split('\n').length, 11, 'the last 10 lines and the completion')
  t.equal(s.delivered(A).length, 31)
})

t.test('tokens keep their rows between lines, when their queue is forgotten', async (t) => {
  const s = stub(t, { maxRows: 40 })
  for (let i = 0; i < 600; i++) {
    // A line every 5 s: the queue empties (and is forgotten) after every row.
    s.delivery.add(B, `line ${i}`)
    await s.clock.tickAsync(5000)
  }
  t.ok(s.of(B).length <= 38, `${s.of(B).length} rows in 50 minutes`)
  t.equal(s.delivery.rows.of(B, 0).used, s.of(B).length)
})

t.test('a full entry goes when its row is due, not after flushInterval; lines after it keep the timer', async (t) => {
  const s = stub(t, { maxRows: 40, flushInterval: 10_000, maxEntryBytes: 1024 })
  s.delivery.add(A, 'line 0')
  await s.clock.tickAsync(10_500)
  t.equal(s.requests.length, 1, 'the first row after flushInterval')
  // The next row is due at 10 s × r ≈ 13.45 s of age; a line now waits for flushInterval: 20.5 s.
  s.delivery.add(A, 'line 1')
  await s.clock.tickAsync(500)
  for (let i = 2; i < 40; i++) s.delivery.add(A, `line ${i} `.padEnd(100, '.'))
  await s.clock.tickAsync(1000)
  t.equal(s.requests.length, 1, 'full, but its row is not due yet')
  await s.clock.tickAsync(2000)
  t.equal(s.requests.length, 2, 'the row went when due, long before flushInterval')
  t.ok((s.requests[1]?.at as number) - (s.requests[0]?.at as number) < 4000)
})

t.test('flush() of more than the rows left can carry: the oldest in this row, the newest for the rows after, the middle named', async (t) => {
  const s = stub(t, { maxRows: 4 })
  for (let i = 0; i < 5000; i++) s.delivery.add(A, `line ${i} `.padEnd(100, '.'))
  const flushed = s.delivery.flush()
  await s.clock.tickAsync(2000)
  await flushed
  const written = rows(s, A)
  t.ok(written.length <= 4, `${written.length} rows`)
  t.match(written[0], /^line 0 \.+\n/)
  t.match(written.join('\n'), /\n… [\d,]+ lines omitted …\n/)
  t.match(written.at(-1), /\nline 4999 \.+$/)
  t.equal(visible(s, A).size + s.stats.dropped.omitted, 5000)
})

t.test('a completion as large as the largest entry leaves no room for lines: they are named, not sent', async (t) => {
  const s = stub(t, { maxRows: 1, maxEntryBytes: 65_535 })
  s.delivery.add(A, 'line 0')
  s.delivery.add(A, 'line 1')
  s.delivery.complete(A, 'x'.repeat(65_535), {})
  await s.clock.tickAsync(1000)
  t.equal(s.requests.length, 1)
  t.match(s.requests[0]?.text, /^… 2 lines omitted …\nx+/, 'the marker, then the completion cut to fit')
  t.ok(Buffer.byteLength(s.requests[0]?.text as string) <= 65_535)
  t.equal(s.stats.dropped.omitted, 2)
  t.equal(s.stats.completions, 1)
})

t.test('lines that clean to nothing spend no row and no request; the next entry takes the first row', async (t) => {
  const s = stub(t, { maxRows: 40, flushInterval: 1000 })
  s.delivery.add(A, '   ')
  s.delivery.add(A, '\u200b')
  await s.clock.tickAsync(2000)
  t.equal(s.requests.length, 0, 'no request for blank lines')
  t.equal(s.stats.skipped, 2)
  t.equal(s.delivery.rows.of(A, s.clock.now()).used, 0, 'no row spent')
  s.delivery.add(A, 'visible')
  await s.clock.tickAsync(2000)
  t.same(s.requests.map((r) => r.text), ['visible'])
  t.equal(s.delivery.rows.of(A, s.clock.now()).used, 1, 'one request, one row')
})

t.test('past maxTokens the row state least recently used goes: a long activity that logs again keeps its rows', async (t) => {
  const budget = new RowBudget(40, 3)
  budget.wrote(budget.of('wf.long', 0), 0)
  budget.of('wf.b', 0)
  budget.of('wf.c', 0)
  budget.of('wf.long', 60_000) // its queue was forgotten between rows; it logs again
  budget.of('wf.d', 60_000)
  t.equal(budget.of('wf.long', 120_000).used, 1, 'its rows used are kept')
  t.equal(budget.of('wf.b', 120_000).used, 0, 'wf.b, least recently used, went and begins again')
})

t.test('a token blocked with the budget on (in flight, a 429 pause, a 502 retry, then the close): a row per entry that landed, every line landed', async (t) => {
  const s = stub(t, { maxRows: 40, flushInterval: 1000 }, (_req, n) => n === 1 ? { latency: 5000 } : n === 2 ? { status: 429, retryAfter: '3' } : n === 3 ? { status: 502 } : {})
  for (let i = 0; i < 30; i++) {
    s.delivery.add(A, `line ${i}`)
    await s.clock.tickAsync(500)
  }
  s.delivery.complete(A, 'done', { ok: true })
  const closed = s.delivery.close()
  await s.clock.tickAsync(30_000)
  await closed
  const refused = 2
  t.equal(s.stats.rows, s.requests.length - refused, `${s.requests.length} requests, ${refused} refused: a row per entry that landed, none for a refused one`)
  t.ok(s.stats.rows <= 40, `${s.stats.rows} rows`)
  t.equal(s.stats.delivered, 31, 'every line and the completion')
  t.same(s.delivered(A), [...Array.from({ length: 30 }, (_, i) => `line ${i}`), 'done'], 'in order, once')
  t.equal(s.stats.completions, 1)
})
