import t from 'tap'
import { Drops } from '../lib/drops'
import { EntryFormer } from '../lib/entry-former'
import { parseOptions } from '../lib/options'
import { Reporter } from '../lib/reporter'
import { LocalBudget } from '../lib/request-budget'
import { RowBudget } from '../lib/row-budget'
import { Scheduler } from '../lib/scheduler'
import { createStats, totalDropped } from '../lib/stats'
import type { TokenQueue } from '../lib/token-queue'
import { TokenTable } from '../lib/token-table'
import { API_KEY, fakeClock } from './fixtures/harness'

// The bytes a TokenTable holds against maxBufferedBytes, through every way lines
// come and go: the count must come back to 0 once nothing is held, or a
// long-running transport would drift into overflow drops (or past its cap).
// The real parts, wired as Delivery wires them; the scheduler never sends here.

const A = 'wf.aaaaaaaaaaaa.token-a'
const B = 'wf.bbbbbbbbbbbb.token-b'

function parts (options: Record<string, unknown> = {}, forced = false) {
  const config = parseOptions({ apiKey: API_KEY, maxRows: 0, maxBufferedBytes: 65536, maxEntryBytes: 1024, ...options }, {})
  const clock = fakeClock()
  const stats = createStats()
  const stderr: string[] = []
  const reporter = new Reporter((text) => { stderr.push(text) }, clock)
  const events: unknown[] = []
  const scheduler = new Scheduler(1, new LocalBudget(0, 1, clock, 1000), clock, () => false)
  scheduler.stop()
  const rows = new RowBudget(config.maxRows, config.maxTokens)
  const drops = new Drops(stats, reporter, (name, payload) => { events.push({ name, payload }) }, config.maxBufferedBytes)
  const table = new TokenTable(config.maxBufferedBytes, config.maxEntryBytes, stats, drops, scheduler, rows, clock, undefined, () => {})
  const former = new EntryFormer(config, clock, table, rows, undefined, () => forced)
  /** Forms and settles every entry of the token, as if each was delivered; returns their texts. */
  const deliverAll = (queue: TokenQueue): string[] => {
    const texts: string[] = []
    for (let entry = former.next(queue); entry !== undefined; entry = former.next(queue)) {
      texts.push(entry.text)
      table.settle(queue, entry)
    }
    return texts
  }
  return { config, clock, stats, table, former, deliverAll, stderr }
}

t.test('lines, tokens and entries are counted while held and let go of once settled', async (t) => {
  const p = parts()
  const q = p.table.open(A)
  t.equal(p.table.memory.bytes, A.length, 'a token counts its string')
  for (let i = 0; i < 50; i++) p.table.push(q, `line ${i} ${'x'.repeat(40)}`, 48, p.clock.now())
  t.equal(p.table.memory.bytes, A.length + 50 * 49, 'each line with its newline')
  const entry = p.former.next(q)
  t.ok(entry !== undefined && entry.bytes <= 1024)
  t.ok(p.table.memory.bytes <= A.length + 50 * 49, 'an entry formed holds its text, not more')
  p.table.settle(q, entry as NonNullable<typeof entry>)
  t.ok(p.deliverAll(q).length > 0)
  p.table.forgetIfIdle(q)
  t.equal(p.table.size, 0)
  t.equal(p.table.memory.bytes, 0)
})

t.test('a completion carrying lines, lines left out for want of rows, and the marker', async (t) => {
  const p = parts({ maxRows: 3, maxEntryBytes: 16384 })
  const q = p.table.open(A)
  for (let i = 0; i < 5000; i++) p.table.push(q, `line ${i} ${'.'.repeat(50)}`, Buffer.byteLength(`line ${i} ${'.'.repeat(50)}`), p.clock.now())
  p.table.complete(q, 'done', 4, { ok: true })
  const texts = p.deliverAll(q)
  t.match(texts.join('\n'), /lines omitted/)
  t.ok(p.stats.dropped.omitted > 0)
  t.equal(p.stats.dropped.omitted + texts.join('\n').split('\n').filter((l) => l.startsWith('line ')).length, 5000, 'every line sent or left out')
  p.table.forgetIfIdle(q)
  t.equal(p.table.memory.bytes, 0)
})

t.test('lines that clean to nothing are skipped, not sent', async (t) => {
  const p = parts()
  const q = p.table.open(A)
  p.table.push(q, '   ', 3, p.clock.now())
  p.table.push(q, '\t', 1, p.clock.now())
  t.equal(p.former.next(q), undefined)
  t.equal(p.stats.skipped, 2)
  t.equal(p.table.size, 0, 'the token is forgotten')
  t.equal(p.table.memory.bytes, 0)
})

t.test('eviction, a token dropped with its attempted entry, and the close deadline', async (t) => {
  const p = parts({ maxBufferedBytes: 65536, maxEntryBytes: 1024 })
  const a = p.table.open(A)
  const b = p.table.open(B)
  for (let i = 0; i < 100; i++) p.table.push(a, 'a'.repeat(999), 999, p.clock.now())
  p.table.evictIfOver()
  for (let i = 0; i < 100; i++) {
    p.table.push(b, 'b'.repeat(999), 999, p.clock.now())
    p.table.evictIfOver()
  }
  t.ok(p.stats.dropped.overflow > 0)
  t.ok(p.table.memory.bytes <= 65536)
  // A's lines went first (the oldest); a newer one waits for its retry, B's entry is in flight when the deadline comes.
  t.equal(p.table.get(A), undefined, 'a token whose lines all went is forgotten')
  const late = p.table.open(A)
  p.table.push(late, 'a late line', 11, p.clock.now())
  const retrying = p.former.next(late)
  late.toRetryWait()
  t.ok(retrying !== undefined)
  const sending = p.former.next(b)
  b.toSending()
  t.ok(sending !== undefined)
  p.table.abandon()
  t.ok(p.stats.unknown > 0, 'the entry in flight: of unknown outcome')
  t.equal(p.table.size, 1, 'a token with a request in flight stays until its answer')
  // Its answer comes: settled already, so only the token is forgotten.
  b.toCollecting()
  p.table.forgetIfIdle(b)
  t.equal(p.table.size, 0)
  t.equal(p.table.memory.bytes, 0)
  t.equal(p.stats.unknown + totalDropped(p.stats), 201, 'every line counted once')
})

t.test('a completion dropped with its token, and every token dropped at once', async (t) => {
  const p = parts()
  const a = p.table.open(A)
  const b = p.table.open(B)
  p.table.push(a, 'a line', 6, p.clock.now())
  p.table.complete(a, 'done', 4, {})
  p.table.push(b, 'b line', 6, p.clock.now())
  p.table.dropAll('auth', 'INVALID_API_KEY')
  t.equal(p.stats.dropped.auth, 3)
  t.equal(p.stats.completionsFailed, 1)
  t.equal(p.table.size, 0)
  t.equal(p.table.memory.bytes, 0)
})
