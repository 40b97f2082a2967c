import t from 'tap'
import type { SpoolHooks } from '../lib/spool'
import type { TokenQueue } from '../lib/token-queue'
import { harness, waitFor } from './fixtures/harness'

// What delivery tells the spool, recorded: every line queued is settled
// exactly once, by its sequence number, unless it was given up on at shutdown
// (then the spool keeps it for the next start). No store is needed here.

const A = 'wf.aaaaaaaaaaaa.token-a'
const B = 'wf.bbbbbbbbbbbb.token-b'

class Recorder implements SpoolHooks {
  readonly queued = new Map<string, number[]>()
  readonly settledSeqs = new Map<string, number[]>()
  readonly sentUpTo = new Map<string, number>()
  active = true
  line (queue: TokenQueue): void { this.push(this.queued, queue.token, queue.pushed) }
  completion (queue: TokenQueue): void { this.push(this.queued, queue.token, queue.pushed) }
  sent (queue: TokenQueue, last: number): void { this.sentUpTo.set(queue.token, last) }
  readonly states = new Map<string, unknown>()
  setState (token: string, state: unknown): void {
    if (state === undefined) this.states.delete(token)
    else this.states.set(token, { ...(state as object) })
  }

  settled (queue: TokenQueue, first: number, n: number): void {
    for (let s = first; s < first + n; s++) this.push(this.settledSeqs, queue.token, s)
  }

  keeps (queue: TokenQueue, first: number, n: number): number {
    return this.active ? this.unsettled(queue.token).filter((s) => s >= first && s < first + n).length : 0
  }

  private push (map: Map<string, number[]>, token: string, seq: number): void {
    map.set(token, [...(map.get(token) ?? []), seq])
  }

  /** Queued and not settled, per token. */
  unsettled (token: string): number[] {
    const done = new Set(this.settledSeqs.get(token) ?? [])
    return (this.queued.get(token) ?? []).filter((s) => !done.has(s))
  }
}

function range (from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i)
}

t.test('delivered lines and the completion are settled by sequence number, each once', async (t) => {
  const spool = new Recorder()
  const h = await harness(t, { maxEntryBytes: 256 }, { latency: 2 }, spool)
  for (let i = 0; i < 40; i++) h.delivery.add(A, `line ${i} ${'x'.repeat(20)}`)
  h.delivery.complete(A, 'done', { ok: true })
  h.delivery.add(B, 'b')
  await h.delivery.flush()
  t.same(spool.queued.get(A), range(1, 41))
  t.same([...(spool.settledSeqs.get(A) ?? [])].sort((a, b) => a - b), range(1, 41), 'every line once')
  t.equal(spool.sentUpTo.get(A), 41, 'the completion went last')
  t.same(spool.unsettled(B), [])
})

t.test('lines that format to nothing are settled without a request', async (t) => {
  const spool = new Recorder()
  const h = await harness(t, {}, {}, spool)
  h.delivery.add(A, '   ')
  await h.delivery.flush()
  t.equal(h.stats.skipped, 1)
  t.same(spool.unsettled(A), [])
  t.equal(spool.sentUpTo.get(A), undefined)
})

t.test('lines dropped for good are settled: overflow, a dead token', async (t) => {
  const spool = new Recorder()
  const h = await harness(t, { maxBufferedBytes: 65536, flushInterval: 60_000, maxEntryBytes: 65535 }, {}, spool)
  for (let i = 0; i < 100; i++) h.delivery.add(A, `${i} ${'y'.repeat(1000)}`)
  t.ok(h.stats.dropped.overflow > 0)
  t.equal((spool.settledSeqs.get(A) ?? []).length, h.stats.dropped.overflow, 'the evicted lines, by number')
  h.sim.killToken(B)
  h.delivery.add(B, 'b1')
  h.delivery.complete(B, 'b done', {})
  await h.delivery.flush()
  t.same(spool.unsettled(B), [], 'a dead token\'s lines and completion')
  t.same(spool.unsettled(A), [])
})

t.test('at shutdown, what is given up on stays in the spool; the entry in flight too, marked as sent', async (t) => {
  const spool = new Recorder()
  const h = await harness(t, { closeTimeout: 500, concurrency: 1, flushInterval: 0 }, {}, spool)
  h.sim.stall(true)
  h.delivery.add(A, 'a1')
  h.clock.tick(1)
  await waitFor(() => h.sim.requests.length === 1, 'the stalled request')
  h.delivery.add(A, 'a2')
  h.delivery.complete(A, 'done', {})
  h.delivery.add(B, 'b1')
  const closing = h.delivery.close()
  await h.clock.runUntil(() => h.stats.leftInSpool + h.stats.unknown === 4)
  await closing
  // a1 was in flight at the deadline: its outcome is unknown, never a drop; the rest stays in the spool, not dropped.
  t.equal(h.stats.unknown, 1, 'a1, in flight')
  t.equal(h.stats.leftInSpool, 3, 'a2, the completion, b1: left in the spool')
  t.equal(h.stats.dropped.shutdown, 0, 'none dropped')
  t.match(h.stderr.join(''), /closed: delivered 0 lines in 0 entries; dropped 0 lines; 3 lines left in the disk spool for the next start;/, 'the summary says where they went')
  t.same(spool.unsettled(A), [1, 2, 3], 'kept for the next start')
  t.same(spool.unsettled(B), [1])
  t.equal(spool.sentUpTo.get(A), 1, 'a1 may have landed')
  t.match(h.stderr.join(''), /the activity of event token wf\.aaa…en-a was not completed by closeTimeout; it stays in the disk spool and the next start with the same spoolDir completes it/)
  t.equal(h.stats.completionsFailed, 0, 'kept in the spool: not a failed completion')
  t.match(h.events.filter((e) => e.name === 'bitrix24:completionFailed').map((e) => e.payload), [{ token: A, reason: 'shutdown', outcome: 'spooled' }], 'its event says so')
})

t.test('at shutdown with a spool that failed, a completion is reported as failed, as without one', async (t) => {
  const spool = new Recorder()
  spool.active = false
  const h = await harness(t, { closeTimeout: 500, concurrency: 1, flushInterval: 0 }, {}, spool)
  h.sim.stall(true)
  h.delivery.add(B, 'b1')
  h.clock.tick(1)
  await waitFor(() => h.sim.requests.length === 1, 'the stalled request')
  h.delivery.complete(B, 'done', {})
  const closing = h.delivery.close()
  await h.clock.runUntil(() => h.stats.dropped.shutdown + h.stats.unknown === 2)
  await closing
  t.equal(h.stats.unknown, 1, 'b1, in flight')
  t.equal(h.stats.dropped.shutdown, 1, 'the completion')
  t.equal(h.stats.completionsFailed, 1)
  t.match(h.stderr.join(''), /could not be completed \(shutdown\); complete it by hand/)
})

t.test('with maxRows, the rows a token used are given to the spool once per row; its completion removes them', async (t) => {
  const spool = new Recorder()
  const h = await harness(t, { maxRows: 10, flushInterval: 100 }, {}, spool)
  h.delivery.add(A, 'a1')
  await h.clock.runUntil(() => h.stats.entries === 1)
  t.match(spool.states.get(A), { used: 1 })
  h.delivery.add(A, 'a2')
  await h.delivery.flush()
  t.match(spool.states.get(A), { used: 2 }, 'a flush spends a row too')
  h.delivery.complete(A, 'done', {})
  await h.delivery.flush()
  t.equal(spool.states.has(A), false, 'completed: nothing to continue')
})

t.test('lines the row budget left out are settled at once: an entry kept at shutdown keeps only its own', async (t) => {
  const spool = new Recorder()
  const h = await harness(t, { maxRows: 3, flushInterval: 100, closeTimeout: 500, maxEntryBytes: 2000 }, {}, spool)
  h.delivery.add(A, 'first')
  await h.clock.runUntil(() => h.stats.entries === 1)
  h.sim.stall(true)
  // 100 KB at close, with one row left: the middle is left out so that the row holds 60,000 bytes.
  for (let i = 0; i < 100; i++) h.delivery.add(A, `${i} ${'z'.repeat(1000)}`)
  const closing = h.delivery.close()
  await h.clock.runUntil(() => h.stats.unknown > 0)
  await closing
  t.ok(h.stats.dropped.omitted > 0, 'lines were left out')
  t.equal(h.stats.unknown + h.stats.dropped.omitted, 100, 'every line accounted for')
  // Settled: 'first' (delivered; its queue was then forgotten, the next one numbers from 1 again)
  // and the lines left out, at once; the entry in flight is kept whole for the next start.
  t.equal((spool.settledSeqs.get(A) ?? []).length, 1 + h.stats.dropped.omitted, 'the lines left out, and nothing of the entry')
  t.equal(spool.sentUpTo.get(A), 100, 'the entry spans every line of its queue')
})
