import t from 'tap'
import { TokenQueue } from '../lib/token-queue'

t.test('take forms an entry from the oldest lines up to the byte limit, then the completion alone', async (t) => {
  const q = new TokenQueue('wf.q')
  q.push('aaaa', 10)
  q.push('bbbb', 20)
  q.push('cccc', 30)
  q.complete('done', 4, { ok: 1 }, 40)
  t.equal(q.headSince, 10)
  t.ok(q.full(14), '3 lines of 4 bytes and 2 newlines fill 14 bytes')
  t.notOk(q.full(15))
  t.same(q.take(9), { text: 'aaaa\nbbbb', bytes: 9, lines: 2, since: 10, returnValues: undefined })
  t.equal(q.headSince, 30, 'the oldest line left')
  t.same(q.take(9), { text: 'cccc', bytes: 4, lines: 1, since: 30, returnValues: undefined })
  t.ok(q.completing)
  t.equal(q.headSince, 40)
  t.same(q.take(9), { text: 'done', bytes: 4, lines: 1, since: 40, returnValues: { ok: 1 } }, 'the completion is its own entry')
  t.equal(q.take(9), undefined)
  t.ok(q.idle)
  t.equal(q.headSince, 0)
  t.equal(q.consumed, 4)
})

t.test('a line larger than the limit still goes, alone', async (t) => {
  const q = new TokenQueue('wf.q')
  q.push('x'.repeat(20), 0)
  q.push('y', 0)
  t.equal(q.take(10)?.text, 'x'.repeat(20))
})

t.test('dropOldest and dropAll say what went', async (t) => {
  const q = new TokenQueue('wf.q')
  t.equal(q.dropOldest(), -1, 'nothing pending')
  q.push('aa', 0)
  q.push('bbb', 0)
  t.equal(q.dropOldest(), 2)
  t.equal(q.pendingBytes, 3)
  q.complete('end', 3, {}, 0)
  t.same(q.dropAll(), { lines: 1, bytes: 3, completionBytes: 3 })
  t.ok(q.idle)
  t.same(q.dropAll(), { lines: 0, bytes: 0, completionBytes: -1 })
})

t.test('settled() resolves once every line queued before it has finished, in order', async (t) => {
  const q = new TokenQueue('wf.q')
  await q.settled()
  q.push('a', 0)
  q.push('b', 0)
  const seen: string[] = []
  const first = q.settled().then(() => { seen.push('first') })
  q.push('c', 0)
  const second = q.settled().then(() => { seen.push('second') })
  q.finish(1)
  await Promise.resolve()
  t.same(seen, [])
  q.finish(1)
  await first
  t.same(seen, ['first'])
  q.finish(1)
  await second
  t.same(seen, ['first', 'second'])
})

t.test('a long queue lets go of what was taken without copying on every take', async (t) => {
  const q = new TokenQueue('wf.q')
  for (let i = 0; i < 4000; i++) q.push(`l${i % 10}`, i)
  const entry = q.take(8000)
  t.equal(entry?.lines, 2667, '2,667 lines of 2 bytes and their newlines fit 8,000 bytes')
  t.equal(q.pendingLines, 1333)
  t.equal(q.headSince, 2667)
  t.equal(q.take(8000)?.lines, 1333)
  t.equal(q.pendingLines, 0)
})

t.test('the arena: multi-byte text survives, room is made by moving or growing, a large emptied arena is let go of', async (t) => {
  const q = new TokenQueue('wf.q')
  t.equal(q.push('Строки ✓ 😀', 0), Buffer.byteLength('Строки ✓ 😀'), 'push returns the UTF-8 size')
  t.equal(q.take(100)?.text, 'Строки ✓ 😀')
  // Fill, take most, add: the live bytes move to the front instead of growing.
  for (let i = 0; i < 20; i++) q.push('x'.repeat(40), i)
  t.equal(q.take(41 * 18)?.lines, 18)
  for (let i = 0; i < 5; i++) q.push('y'.repeat(40), i)
  t.same(q.take(10_000)?.text.split('\n'), [...Array(2).fill('x'.repeat(40)), ...Array(5).fill('y'.repeat(40))])
  // A burst grows the arena past 64 KB; once emptied it is not kept.
  for (let i = 0; i < 100; i++) q.push('z'.repeat(1000), i)
  t.equal(q.take(200_000)?.lines, 100)
  t.ok(q.idle)
  t.equal(q.push('after', 0), 5)
  t.equal(q.take(10)?.text, 'after')
})
