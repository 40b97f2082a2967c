import t from 'tap'
import { addLine, addRange, inRanges, liveIn, newRec, openChunk, settleLines, takeUnwritten, tokenRecord } from '../lib/spool-record'

// One token's bookkeeping in the spool: chunks, settled ranges and what a
// flush writes, without a store.

t.test('settled ranges stay sorted and disjoint; neighbours merge', async (t) => {
  const ranges: Array<[number, number]> = []
  addRange(ranges, 1, 3)
  addRange(ranges, 7, 8)
  addRange(ranges, 5, 5)
  t.same(ranges, [[1, 3], [5, 5], [7, 8]])
  addRange(ranges, 4, 4)
  t.same(ranges, [[1, 5], [7, 8]], 'adjacent ranges join')
  addRange(ranges, 6, 9)
  t.same(ranges, [[1, 9]])
  t.ok(inRanges(ranges, 9))
  t.notOk(inRanges(ranges, 10))
  t.notOk(inRanges(undefined, 1), 'no record: nothing is settled')
})

t.test('settling subtracts from the chunks holding the lines and drops the chunks all of whose lines are settled', async (t) => {
  const rec = newRec('wf.a', 1)
  const a = openChunk(rec, 1, 0, [], undefined)
  for (let i = 0; i < 3; i++) addLine(a, 10)
  const b = openChunk(rec, 4, 0, [], undefined)
  for (let i = 0; i < 3; i++) addLine(b, 10)
  t.same([a.n, a.live, a.bytes], [3, 3, 30])
  const dropped: number[] = []
  const drop = (i: number): void => {
    dropped.push((rec.chunks[i] as { first: number }).first)
    rec.chunks.splice(i, 1)
  }
  // Eviction behind an entry in flight settles out of order.
  settleLines(rec, 5, 1, drop)
  t.same([a.live, b.live], [3, 2])
  settleLines(rec, 1, 4, drop)
  t.same(dropped, [1], 'the first chunk is settled; the second keeps line 6')
  t.equal(b.live, 1)
  t.same(rec.settled, [[1, 5]])
  settleLines(rec, 6, 1, drop)
  t.same(dropped, [1, 4])
  t.same(rec.chunks, [])
})

t.test('a flush writes the chunks not yet written, once, and keeps no text; the token record keeps ranges still inside kept chunks', async (t) => {
  const rec = newRec('wf.a', 2)
  const lines = openChunk(rec, 1, 100, ['one', 'two'], undefined)
  addLine(lines, 3)
  addLine(lines, 3)
  t.same(takeUnwritten(rec), [[['wf.a', 2, 1], [100, ['one', 'two']]]])
  t.equal(lines.texts, undefined, 'written: the text is on disk only')
  t.equal(rec.open, undefined, 'the next line opens a new chunk')
  const done = openChunk(rec, 3, 200, ['done'], { ok: true })
  addLine(done, 4)
  t.same(takeUnwritten(rec), [[['wf.a', 2, 3], [200, ['done'], { ok: true }]]], 'only the new one, with its return values')
  t.same(takeUnwritten(rec), [])
  rec.sent = 2
  rec.settled = [[1, 1]]
  rec.chunks.shift()
  t.same(tokenRecord(rec, { used: 1 }), { e: 2, s: 2, d: [], x: { used: 1 } }, 'ranges before the oldest kept chunk are forgotten')
  rec.gone = true
  t.same(tokenRecord(rec, { used: 1 }), { x: { used: 1 } }, 'gone: only the state stays')
  t.equal(tokenRecord(rec, undefined), undefined, 'gone, no state: the record is removed')
})

t.test('settling a line twice counts once: lines left out, then the entry around them', async (t) => {
  const rec = newRec('wf.a', 1)
  const chunk = openChunk(rec, 1, 0, [], undefined)
  for (let i = 0; i < 10; i++) addLine(chunk, 10)
  const drop = (i: number): void => { rec.chunks.splice(i, 1) }
  settleLines(rec, 4, 3, drop)
  settleLines(rec, 8, 1, drop)
  t.equal(chunk.live, 6)
  settleLines(rec, 1, 9, drop)
  t.equal(chunk.live, 1, 'only lines 1-3, 7 and 9 were new')
  t.same(rec.settled, [[1, 9]])
  settleLines(rec, 5, 0, drop)
  t.same(rec.settled, [[1, 9]], 'nothing settled: nothing recorded')
  settleLines(rec, 10, 1, drop)
  t.same(rec.chunks, [])
})

t.test('liveIn: the lines of a range the record still holds, settled ones and those in no chunk left out', async (t) => {
  const rec = newRec('wf.a', 1)
  // Lines 1-3 left the spool (over spoolMaxBytes): no chunk holds them.
  const a = openChunk(rec, 4, 0, [], undefined)
  for (let i = 0; i < 4; i++) addLine(a, 10)
  const b = openChunk(rec, 8, 0, [], undefined)
  for (let i = 0; i < 3; i++) addLine(b, 10)
  t.equal(liveIn(rec, 1, 10), 7, 'lines 4 to 10')
  t.equal(liveIn(rec, 1, 3), 0, 'none of those it let go')
  settleLines(rec, 5, 1, () => {})
  settleLines(rec, 9, 1, () => {})
  t.equal(liveIn(rec, 1, 10), 5, 'settled lines are not held')
  t.equal(liveIn(rec, 8, 8), 1, 'one line, in the second chunk')
  t.equal(liveIn(rec, 11, 20), 0, 'past the newest')
})
