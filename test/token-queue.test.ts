import t from 'tap'
import { type Entry, TokenQueue } from '../lib/token-queue'
import { ChunkPool } from '../lib/chunk-pool'

t.test('take forms an entry from the oldest lines up to the byte limit, then the completion alone', async (t) => {
  const q = new TokenQueue('wf.q', 9)
  q.push('aaaa', 4, 10)
  q.push('bbbb', 4, 20)
  t.ok(q.full, '2 lines of 4 bytes and a newline fill 9 bytes')
  q.push('cccc', 4, 30)
  q.complete('done', 4, { ok: 1 }, 40)
  t.equal(q.headSince, 10)
  t.equal(q.pendingLines, 3)
  t.same(q.take(), { text: 'aaaa\nbbbb', bytes: 9, lines: 2, since: 10, returnValues: undefined })
  t.equal(q.headSince, 30, 'the oldest line left')
  t.notOk(q.full)
  t.same(q.take(), { text: 'cccc', bytes: 4, lines: 1, since: 30, returnValues: undefined })
  t.ok(q.completing)
  t.equal(q.headSince, 40)
  t.same(q.take(), { text: 'done', bytes: 4, lines: 1, since: 40, returnValues: { ok: 1 } }, 'the completion is its own entry')
  t.equal(q.take(), undefined)
  t.ok(q.idle)
  t.equal(q.headSince, 0)
  t.equal(q.consumed, 4)
})

t.test('a line larger than the limit still goes, alone', async (t) => {
  const q = new TokenQueue('wf.q', 10)
  q.push('x'.repeat(20), 20, 0)
  q.push('y', 1, 0)
  t.equal(q.take()?.text, 'x'.repeat(20))
  t.equal(q.take()?.text, 'y')
})

t.test('lines that wait grow into full entries, never more entries: the same text as one take at the end', async (t) => {
  const q = new TokenQueue('wf.q', 100)
  const lines = Array.from({ length: 57 }, (_, i) => `line ${i} `.padEnd(7 + (i % 13), '.'))
  for (const line of lines) q.push(line, Buffer.byteLength(line), 0)
  const entries: string[] = []
  for (let e = q.take(); e !== undefined; e = q.take()) entries.push(e.text)
  t.same(entries.join('\n').split('\n'), lines, 'every line, in order')
  for (const e of entries.slice(0, -1)) t.ok(Buffer.byteLength(e) <= 100 && Buffer.byteLength(e) > 85, `${Buffer.byteLength(e)} bytes: full`)
})

t.test('dropOldest drops an entry\'s worth; dropAll says what went', async (t) => {
  const q = new TokenQueue('wf.q', 6)
  t.equal(q.dropOldest(), undefined, 'nothing pending')
  q.push('aa', 2, 0)
  q.push('bbb', 3, 0)
  q.push('c', 1, 0)
  t.match(q.dropOldest(), { bytes: 6, lines: 2, since: 0 }, 'what went')
  t.equal(q.pendingBytes, 1)
  q.complete('end', 3, {}, 0)
  t.same(q.dropAll(), { lines: 1, bytes: 1, completionBytes: 3 })
  t.ok(q.idle)
  t.same(q.dropAll(), { lines: 0, bytes: 0, completionBytes: -1 })
})

/** Takes the queue's next entry and holds it as attempted, as EntryFormer does. */
function attempt (q: TokenQueue): Entry {
  const first = q.consumed + 1
  const taken = q.take() as { text: string, bytes: number, lines: number, since: number }
  const entry: Entry = { first, span: q.consumed - first + 1, ...taken, attempts: 0, returnValues: undefined, settled: false }
  q.hold(entry)
  return entry
}

/** Settles an attempted entry, as TokenTable does. */
function settle (q: TokenQueue, entry: Entry): void {
  q.release(entry)
  q.finish(entry.span)
}

t.test('settled() resolves once every line queued before it has finished, in order', async (t) => {
  const q = new TokenQueue('wf.q', 1)
  await q.settled()
  q.push('a', 1, 0)
  q.push('b', 1, 0)
  const seen: string[] = []
  const first = q.settled().then(() => { seen.push('first') })
  q.push('c', 1, 0)
  const second = q.settled().then(() => { seen.push('second') })
  settle(q, attempt(q))
  await Promise.resolve()
  t.same(seen, [])
  settle(q, attempt(q))
  await first
  t.same(seen, ['first'])
  settle(q, attempt(q))
  await second
  t.same(seen, ['first', 'second'])
})

t.test('settled() waits for an older entry in flight while newer lines finish first (an overflow evicts them)', async (t) => {
  const q = new TokenQueue('wf.q', 1)
  q.push('a', 1, 0)
  const inFlight = attempt(q)
  q.push('b', 1, 0)
  q.push('c', 1, 0)
  let resolved = false
  const waiting = q.settled().then(() => { resolved = true })
  // Evicted: the pending lines go first, and are finished.
  q.dropOldest()
  q.dropOldest()
  q.finish(2)
  await Promise.resolve()
  t.equal(resolved, false, 'two lines finished, but not line 1, in flight')
  settle(q, inFlight)
  await waiting
  t.equal(resolved, true)
})

t.test('a long queue lets go of what was taken without copying on every take', async (t) => {
  const q = new TokenQueue('wf.q', 8)
  for (let i = 0; i < 400; i++) q.push(`l${i % 10}`, 2, i)
  t.equal(q.take()?.lines, 3, '3 lines of 2 bytes and their newlines fit 8 bytes')
  t.equal(q.headSince, 3)
  let lines = 3
  for (let i = 0; i < 100; i++) lines += q.take()?.lines as number
  t.equal(lines, 303)
  t.equal(q.headSince, 303)
  t.equal(q.pendingLines, 97)
})

t.test('take(cap) joins whole batches up to cap; omit leaves out the oldest down to what is kept', async (t) => {
  const q = new TokenQueue('wf.q', 9)
  for (const [i, text] of ['aaaa', 'bbbb', 'cccc', 'dddd', 'ee'].entries()) q.push(text, Buffer.byteLength(text), i)
  t.equal(q.headBytes, 9, 'the oldest batch')
  t.equal(q.joinedBytes, 22)
  t.equal(q.completionBytes, -1)
  t.same(q.take(19), { text: 'aaaa\nbbbb\ncccc\ndddd', bytes: 19, lines: 4, since: 0, returnValues: undefined }, 'two batches in one entry')
  t.equal(q.headBytes, 2, 'lines still gathering, not sealed by looking')
  q.push('ff', 2, 5)
  t.same(q.take(100), { text: 'ee\nff', bytes: 5, lines: 2, since: 4, returnValues: undefined }, 'they joined the next line')
  t.equal(q.headBytes, 0)
  for (const [i, text] of ['gggg', 'hhhh', 'iiii', 'jj'].entries()) q.push(text, 4 - (text === 'jj' ? 2 : 0), 10 + i)
  t.same(q.omit(7), { lines: 2, bytes: 10 }, 'the oldest batch of 2 lines went, each line with its newline')
  t.equal(q.joinedBytes, 7, 'whole lines stay: iiii and jj')
  t.same(q.omit(7), { lines: 0, bytes: 0 }, 'nothing over: nothing goes')
  q.complete('done', 4, {}, 20)
  t.equal(q.completionBytes, 4)
  t.match(q.takeCompletion(), { text: 'done', lines: 1 })
  t.equal(q.takeCompletion(), undefined)
})

t.test('with a pool, batches that fill half an entry or more wait in its buffers, as UTF-8, and give them back', async (t) => {
  const pool = new ChunkPool(20, 4)
  const q = new TokenQueue('wf.q', 20, pool)
  // Two lines of 9 and 7 bytes (é and ü are two bytes each): 17 bytes joined, a pooled batch.
  q.push('ligne é1', 9, 1)
  q.push('zwei ü', 7, 2)
  q.push('drei', 4, 3)
  t.equal(q.headBytes, 17)
  t.same(q.take(), { text: 'ligne é1\nzwei ü', bytes: 17, lines: 2, since: 1, returnValues: undefined })
  t.equal(pool.get().toString('utf8', 0, 17), 'ligne é1\nzwei ü', 'its buffer came back, to be written again')
  t.same(q.take(), { text: 'drei', bytes: 4, lines: 1, since: 3, returnValues: undefined }, 'a lone line stays its own string')
  // Under half of an entry: joined as text, no buffer.
  q.push('a', 1, 4)
  q.push('b', 1, 5)
  q.push('x'.repeat(19), 19, 6)
  t.same(q.take(), { text: 'a\nb', bytes: 3, lines: 2, since: 4, returnValues: undefined })
  t.equal(q.take()?.text, 'x'.repeat(19))
})

t.test('with a pool, several batches make one larger entry, and dropped batches give their buffers back', async (t) => {
  const pool = new ChunkPool(10, 8)
  const q = new TokenQueue('wf.q', 10, pool)
  for (const line of ['aaaa', 'bbbb', 'cccc', 'dddd', 'eeee', 'ffff', 'gggg', 'hhhh']) q.push(line, 4, 0)
  t.same(q.take(21), { text: 'aaaa\nbbbb\ncccc\ndddd', bytes: 19, lines: 4, since: 0, returnValues: undefined })
  t.match(q.dropOldest(), { bytes: 9, lines: 2 })
  t.equal(pool.get().toString('utf8', 0, 9), 'eeee\nffff', 'the dropped batch\'s buffer')
  q.push('iiii', 4, 0)
  q.push('jjjj', 4, 0)
  t.same(q.dropAll(), { lines: 4, bytes: 16, completionBytes: -1 })
  // The lines still gathering were never written into a buffer.
  const back = [pool.get(), pool.get()].map((b) => b.toString('utf8', 0, 9))
  t.ok(back.includes('gggg\nhhhh'), 'the pending batch\'s buffer came back')
})
