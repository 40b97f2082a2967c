import { spawnSync } from 'node:child_process'
import { chmodSync, closeSync, mkdirSync, openSync, writeSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Drops } from '../lib/drops'
import { parseOptions, type Options } from '../lib/options'
import { replay } from '../lib/replay'
import { newId } from '../lib/spool-owner'
import { type Opened, openSpool, type Spool } from '../lib/spool'
import { loadStore, openStore, probeStore } from '../lib/spool-store'
import { createStats, type Stats } from '../lib/stats'
import { TokenQueue } from '../lib/token-queue'
import { API_KEY, harness, waitFor } from './fixtures/harness'
import { needsStore } from './fixtures/store'
import { untrackLibChildren } from './fixtures/untracked'

// Its spool-file probes (child processes of lib/spool-store.ts) run without tap's tracking.
untrackLibChildren()

// The spool on a real directory with the real store (lmdb), in-process.
// Crashes with real processes are in spool-processes.test.ts.

const A = 'wf.aaaaaaaaaaaa.token-a'
const B = 'wf.bbbbbbbbbbbb.token-b'
const HOUR = 3_600_000

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'b24-spool-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

interface Started extends Opened {
  stats: Stats
  warnings: string[]
}

async function start (t: Test, dir: string, options: Options = {}, now = Date.now()): Promise<Started> {
  const stats = createStats()
  const warnings: string[] = []
  const config = parseOptions({ apiKey: API_KEY, spoolDir: dir, ...options }, {})
  const opened = await openSpool(config, stats, (text) => { warnings.push(text) }, now)
  t.teardown(() => opened.spool?.close())
  return { ...opened, stats, warnings }
}

/** What a spool file holds: its lines' texts per token, in key order (settled ones in a kept chunk too). */
async function contents (path: string): Promise<Map<string, string[]>> {
  const store = openStore(loadStore(), path)
  const out = new Map<string, string[]>()
  for (const { key, value } of store.lines.getRange()) {
    const token = (key as string[])[0] as string
    out.set(token, [...(out.get(token) ?? []), ...(value as [number, string[]])[1]])
  }
  await store.root.close()
  return out
}

function spoolFiles (dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.mdb')).sort()
}

t.test('lines are written in batches, off the reading path, and removed once delivered', needsStore(), async (t) => {
  const dir = tempDir(t)
  const { spool, stats, warnings } = await start(t, dir)
  const h = await harness(t, { flushInterval: 1000 }, {}, spool)
  h.sim.stall(true)
  h.delivery.add(A, 'a1')
  h.delivery.add(B, 'b1')
  h.delivery.add(A, 'a2')
  t.equal(stats.spooled, 0, 'nothing is written while lines are read')
  await (spool as Spool).flush()
  t.equal(stats.spooled, 3, 'one batch wrote them')
  t.same(await contents((spool as Spool).path), new Map([[A, ['a1', 'a2']], [B, ['b1']]]))
  h.sim.stall(false)
  h.clock.tick(1000)
  await waitFor(() => h.stats.entries === 2, 'both entries')
  await (spool as Spool).flush()
  t.same(await contents((spool as Spool).path), new Map(), 'delivered lines leave the spool')
  t.equal((spool as Spool).bytes, 0)
  await (spool as Spool).close()
  t.same(spoolFiles(dir), [], 'an empty spool is removed at close')
  t.same(readdirSync(dir), [], 'and its lock with it')
  t.same(warnings, [])
})

t.test('a backlog that outlives closeTimeout stays in the spool; the next start replays it in order, the in-flight entry counted as a possible duplicate', needsStore(), async (t) => {
  const dir = tempDir(t)
  const first = await start(t, dir)
  const h = await harness(t, { closeTimeout: 1000, flushInterval: 0, concurrency: 1 }, {}, first.spool)
  h.sim.stall(true)
  for (let i = 0; i < 5; i++) h.delivery.add(A, `a${i}`)
  h.delivery.complete(A, 'done', { ok: 1 })
  h.delivery.add(B, 'b0')
  await waitFor(() => h.sim.requests.length === 1, 'a request in flight')
  const closing = h.delivery.close()
  await h.clock.runUntil(() => h.stats.leftInSpool + h.stats.unknown > 0)
  await closing
  await (first.spool as Spool).close()
  // a0, in flight at the deadline, is of unknown outcome, as without a spool; the rest is not dropped: it is left in the spool.
  t.equal(h.stats.unknown, 1, 'the entry in flight')
  t.equal(h.stats.leftInSpool, 6, 'the rest, left in the spool')
  t.equal(h.stats.dropped.shutdown, 0, 'nothing dropped')
  t.equal(spoolFiles(dir).length, 1, 'the spool stays')

  // The spool keeps delivery's clock: the harness's fake one.
  const second = await start(t, dir, {}, h.clock.now())
  t.same(spoolFiles(dir), [`${(second.spool as Spool).id}.1.mdb`, `${(second.spool as Spool).id}.mdb`], 'adopted: renamed to the new owner')
  const recovered = second.recovered as NonNullable<Opened['recovered']>
  t.equal(recovered.lines, 6)
  t.equal(recovered.completions, 1)
  t.equal(recovered.files, 1)
  const byToken = new Map(recovered.tokens.map((r) => [r.token, r]))
  t.same(byToken.get(A)?.lines, ['a0', 'a1', 'a2', 'a3', 'a4'], 'per token, in order')
  t.same(byToken.get(A)?.completion, { text: 'done', returnValues: { ok: 1 } }, 'the completion, kept apart to go last')
  t.equal(byToken.get(A)?.possiblyLanded, true, 'A\'s first entry was in flight')
  t.equal(byToken.get(B)?.possiblyLanded, false)
  // Once the new spool committed what it took over, the adopted file goes.
  const h2 = await harness(t, {}, {}, second.spool)
  for (const r of recovered.tokens) for (const line of r.lines) h2.delivery.add(r.token, line)
  await (second.spool as Spool).flush()
  t.same(spoolFiles(dir), [`${(second.spool as Spool).id}.mdb`], 'the adopted file is gone once its lines are in the new spool')
})

t.test('at shutdown, lines the spool let go over spoolMaxBytes are dropped; those it holds are left in it, and the next start has exactly those', needsStore(), async (t) => {
  const dir = tempDir(t)
  const first = await start(t, dir, { spoolMaxBytes: 65536 })
  const h = await harness(t, { closeTimeout: 500, flushInterval: 60_000, maxEntryBytes: 8192, concurrency: 1 }, {}, first.spool)
  // The first request meets a pause past closeTimeout: nothing is in flight at the deadline, every line is given up.
  h.sim.script({ status: 429, code: 'RATE_LIMITED', headers: { 'Retry-After': '60' } })
  const line = 'x'.repeat(1000)
  for (let i = 0; i < 100; i++) h.delivery.add(i % 2 === 0 ? A : B, `${i} ${line}`)
  t.ok(first.stats.unspooled > 30, `${first.stats.unspooled} let go`)
  const closing = h.delivery.close()
  await h.clock.runUntil(() => h.stats.leftInSpool + h.stats.dropped.shutdown === 100)
  await closing
  await (first.spool as Spool).close()
  t.equal(h.stats.unknown, 0)
  t.equal(h.stats.dropped.shutdown, first.stats.unspooled, 'what the spool let go is dropped, as without a spool')
  t.equal(h.stats.leftInSpool, 100 - first.stats.unspooled, 'the rest is left in the spool')
  // On delivery's clock, as the spool wrote them (the harness's fake one).
  const second = await start(t, dir, {}, h.clock.now())
  t.equal(second.recovered?.lines, h.stats.leftInSpool, 'and the next start has exactly those')
})

t.test('keeps: the lines of a range it holds; none of a token it never had, none once it failed', needsStore(), async (t) => {
  const dir = tempDir(t)
  const spool = (await start(t, dir)).spool as Spool
  const queue = new TokenQueue(A, 1000)
  for (let i = 0; i < 3; i++) {
    queue.push(`l${i}`, 2, 0)
    spool.line(queue, `l${i}`, 2, 0)
  }
  t.equal(spool.keeps(queue, 1, 3), 3)
  t.equal(spool.keeps(queue, 2, 5), 2, 'lines 2 and 3 of 2 to 6')
  t.equal(spool.keeps(new TokenQueue(B, 1000), 1, 3), 0, 'a token it never had')
  spool.fail('a test')
  t.equal(spool.keeps(queue, 1, 3), 0, 'none once it failed')
})

t.test('lines older than spoolMaxAge are not replayed; they are counted', needsStore(), async (t) => {
  const dir = tempDir(t)
  const first = await start(t, dir)
  const queue = new TokenQueue(A, 1000)
  const spool = first.spool as Spool
  queue.push('old', 3, 0)
  spool.line(queue, 'old', 3, Date.now() - 2 * HOUR)
  // A record holds what one flush wrote; its time is its oldest line's.
  await spool.flush()
  queue.push('new', 3, 0)
  spool.line(queue, 'new', 3, Date.now())
  await spool.flush()
  // A later queue of the same token (its first one was forgotten with a line kept): a new epoch.
  const later = new TokenQueue(A, 1000)
  later.push('later', 5, 0)
  spool.line(later, 'later', 5, Date.now())
  await spool.flush()
  queue.complete('done', 4, { a: 1 }, 0)
  spool.completion(queue, 'done', 4, { a: 1 }, Date.now() - 2 * HOUR)
  await spool.close()
  const second = await start(t, dir, { spoolMaxAge: HOUR })
  t.same(second.recovered?.expired, [{ token: A, lines: 1, completion: true }])
  t.same(second.recovered?.tokens[0]?.lines, ['new', 'later'], 'lines of an older epoch are replayed whatever its record says')
  t.equal(second.recovered?.tokens[0]?.completion, undefined)
})

t.test('a small per-token state is kept with the token and restored (for the row budget)', needsStore(), async (t) => {
  const dir = tempDir(t)
  const { spool } = await start(t, dir)
  const queue = new TokenQueue(A, 1000)
  queue.push('line', 4, 0)
  ;(spool as Spool).line(queue, 'line', 4, Date.now())
  ;(spool as Spool).sent(queue, 1)
  ;(spool as Spool).sent(queue, 1)
  ;(spool as Spool).setState(A, { rows: 7 })
  ;(spool as Spool).setState(B, { rows: 3 })
  // C's state is set before its first line, in the same flush window.
  const c = new TokenQueue('wf.cccccccccccc.token-c', 1000)
  ;(spool as Spool).setState(c.token, { rows: 1 })
  ;(spool as Spool).setState('wf.dddddddddddd.token-d', { rows: 0 })
  c.push('c', 1, 0)
  ;(spool as Spool).line(c, 'c', 1, Date.now())
  // A's line settles: its record keeps the state, without the sent mark.
  ;(spool as Spool).settled(queue, 1, 1)
  const other = new TokenQueue(B, 1000)
  other.push('b0', 2, 0)
  ;(spool as Spool).line(other, 'b0', 2, Date.now())
  other.push('b', 1, 0)
  ;(spool as Spool).line(other, 'b', 1, Date.now())
  await (spool as Spool).flush()
  // b0 is delivered; b's request is in flight: the record says which line of the chunk is left.
  ;(spool as Spool).settled(other, 1, 1)
  ;(spool as Spool).sent(other, 2)
  await (spool as Spool).close()
  const second = await start(t, dir)
  const byToken = new Map(second.recovered?.tokens.map((r) => [r.token, r]))
  t.same(byToken.get(A), { token: A, lines: [], completion: undefined, possiblyLanded: false, state: { rows: 7 } })
  t.same(byToken.get(B), { token: B, lines: ['b'], completion: undefined, possiblyLanded: true, state: { rows: 3 } })
  t.same(byToken.get('wf.dddddddddddd.token-d')?.state, { rows: 0 }, 'a state with no line')
  t.same(byToken.get('wf.cccccccccccc.token-c'), { token: 'wf.cccccccccccc.token-c', lines: ['c'], completion: undefined, possiblyLanded: false, state: { rows: 1 } })
})

t.test('over spoolMaxBytes the oldest lines leave the spool, counted as unspooled; delivery still has them', needsStore(), async (t) => {
  const dir = tempDir(t)
  const { spool, stats, warnings } = await start(t, dir, { spoolMaxBytes: 65536 })
  // Nothing is ready to go until the flush below.
  const h = await harness(t, { flushInterval: 60_000, maxEntryBytes: 65535 }, {}, spool)
  const line = 'x'.repeat(1000)
  for (let i = 0; i < 100; i++) h.delivery.add(i % 2 === 0 ? A : B, `${i} ${line}`)
  t.ok((spool as Spool).bytes <= 65536, 'within the cap')
  t.ok(stats.unspooled > 30, `${stats.unspooled} unspooled`)
  t.equal(warnings.length, 1, 'one stderr line')
  t.match(warnings[0], /over spoolMaxBytes \(65536\); its oldest lines are kept in memory only/)
  await (spool as Spool).flush()
  const kept = await contents((spool as Spool).path)
  const first = Number(kept.get(A)?.[0]?.split(' ')[0])
  t.ok(first > 0, 'the oldest went')
  t.equal(kept.get(A)?.at(-1)?.split(' ')[0], '98', 'the newest stay')
  await h.delivery.flush()
  t.equal(h.stats.delivered, 100, 'every line is still delivered from memory')
  await (spool as Spool).flush()
  t.same(await contents((spool as Spool).path), new Map())
})

t.test('a spool file deleted while running: one stderr line, then memory only', needsStore(), async (t) => {
  const dir = tempDir(t)
  const { spool, warnings } = await start(t, dir)
  const h = await harness(t, { flushInterval: 0 }, {}, spool)
  h.delivery.add(A, 'one')
  await (spool as Spool).flush()
  h.delivery.add(A, 'one more')
  // Its write is under way when the next flush finds the file gone.
  const under = (spool as Spool).flush()
  rmSync(dir, { recursive: true, force: true })
  h.delivery.add(A, 'two')
  await (spool as Spool).flush()
  await under
  t.equal(warnings.length, 1)
  t.match(warnings[0], /the disk spool .* failed \(its file was deleted\); lines are kept in memory only/)
  t.equal((spool as Spool).active, false)
  h.delivery.add(A, 'three')
  ;(spool as Spool).setState(A, 1)
  ;(spool as Spool).completion(new TokenQueue(B, 1000), 'done', 4, {}, 0)
  await h.delivery.flush()
  t.same(h.sim.entries(A).join('\n').split('\n'), ['one', 'one more', 'two', 'three'], 'logging goes on')
  ;(spool as Spool).fail('again')
  t.equal(warnings.length, 1, 'said once')
})

t.test('a corrupt spool file of a dead owner: one stderr line, moved aside, the rest replayed', needsStore(), async (t) => {
  const dir = tempDir(t)
  const dead = newId()
  writeFileSync(join(dir, `${dead}.mdb`), 'this is no lmdb file, just text that is long enough to be read as a header'.repeat(100))
  const { spool, warnings, recovered } = await start(t, dir)
  t.ok(spool?.active, 'the new spool works')
  t.equal(recovered?.files, 0)
  t.equal(warnings.length, 1)
  t.match(warnings[0], /could not be read \(.+\); it was moved aside as .*\.corrupt and is not replayed/)
  t.ok(readdirSync(dir).some((f) => f.endsWith('.corrupt')))
})

t.test('one start adopts spools of ended processes up to spoolMaxBytes (at least one); it says how many wait for the next', needsStore(), async (t) => {
  const dir = tempDir(t)
  // Two of 40 KB against spoolMaxBytes of 64 KiB: the older is taken (unreadable here: moved aside), the newer waits.
  const older = `${newId()}.mdb`
  const newer = `${newId()}.mdb`
  for (const [file, time] of [[older, 1000], [newer, 2000]] as const) {
    writeFileSync(join(dir, file), 'x'.repeat(40_000))
    utimesSync(join(dir, file), time, time)
  }
  const { warnings } = await start(t, dir, { spoolMaxBytes: 65536 })
  t.equal(warnings.length, 2)
  t.match(warnings[0], /^1 spool of ended processes left for the next start: one start takes at most 16 and spoolMaxBytes of them, oldest first$/)
  t.match(warnings[1], /could not be read/, 'the older one was taken')
  t.ok(readdirSync(dir).includes(newer), 'the newer one waits, as it was')
})

t.test('a directory that cannot hold a spool: one stderr line, memory only, no crash', needsStore(), async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'file'), '')
  const under = await start(t, join(dir, 'file', 'spool'))
  t.equal(under.spool, undefined)
  t.match(under.warnings, [/the disk spool cannot start in .*file\/spool \(ENOTDIR\); lines are kept in memory only/])
  // The lock can be taken, but the store cannot open: a directory where its file should be.
  const blocked = join(dir, 'blocked')
  mkdirSync(blocked)
  const config = parseOptions({ apiKey: API_KEY, spoolDir: blocked }, {})
  const warnings: string[] = []
  const ids: string[] = []
  const opened = await openSpool(config, createStats(), (text) => { warnings.push(text) }, Date.now(), (name) => {
    const lmdb = require(name) as { open: (o: { path: string }) => unknown }
    return { open: (o: { path: string }) => { ids.push(o.path); mkdirSync(o.path); chmodSync(blocked, 0o500); return lmdb.open(o) } }
  })
  t.equal(opened.spool, undefined)
  t.match(warnings, [/the disk spool cannot start in/])
  t.same(readdirSync(blocked).filter((f) => f.endsWith('.sock')), [], 'its lock is released')
})

function mount (t: Test, options: string): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'b24-mount-'))
  const done = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'ignore' })
  t.teardown(() => {
    spawnSync('umount', ['-l', dir])
    rmSync(dir, { recursive: true, force: true })
  })
  return done.status === 0 ? dir : undefined
}

const canMount = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'b24-mount-'))
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' }).status === 0
  if (ok) spawnSync('umount', [dir])
  rmSync(dir, { recursive: true, force: true })
  return ok
})()
const needsMount = (): { skip?: string } => needsStore().skip !== undefined ? needsStore() : canMount ? {} : { skip: 'mounting a tmpfs needs root: the read-only and full-disk tests use real file systems' }

t.test('a read-only file system: one stderr line, memory only', needsMount(), async (t) => {
  const dir = mount(t, 'ro,size=64k') as string
  const { spool, warnings } = await start(t, join(dir, 'spool'))
  t.equal(spool, undefined)
  t.match(warnings, [/the disk spool cannot start in .* \(E[A-Z]+\)/])
  const flat = await start(t, dir)
  t.equal(flat.spool, undefined, 'the directory itself read-only')
  t.match(flat.warnings, [/\(EROFS\)/])
})

t.test('a full disk: one stderr line, then memory only; delivery goes on', needsMount(), async (t) => {
  const dir = mount(t, 'size=256k') as string
  const { spool, warnings } = await start(t, dir, { spoolMaxBytes: 1 << 30 })
  const h = await harness(t, { flushInterval: 60_000, maxBufferedBytes: 4 << 20 }, {}, spool)
  h.sim.stall(true)
  const line = 'y'.repeat(2000)
  for (let i = 0; i < 1000 && (spool as Spool).active; i++) {
    h.delivery.add(A, `${i} ${line}`)
    if (i % 50 === 49) await (spool as Spool).flush()
  }
  await (spool as Spool).flush()
  t.equal((spool as Spool).active, false, 'the write failed')
  t.equal(warnings.length, 1)
  t.match(warnings[0], /the disk spool .* failed \(.+\); lines are kept in memory only/)
  h.delivery.add(A, 'after')
  h.sim.stall(false)
  await h.delivery.flush()
  t.match(h.sim.entries(A).join('\n'), /\nafter$/, 'logging goes on')
})

t.test('a disk that fills during a write: one stderr line with the cause, then memory only', needsMount(), async (t) => {
  const dir = mount(t, 'size=1m') as string
  const { spool, warnings } = await start(t, dir)
  const queue = new TokenQueue(A, 65535)
  for (let i = 0; i < 50; i++) {
    queue.push('z'.repeat(4000), 4000, 0)
    ;(spool as Spool).line(queue, 'z'.repeat(4000), 4000, 0)
  }
  // The check of free space passed; lmdb commits on its own thread after this turn, when the disk is full.
  const writing = (spool as Spool).flush()
  const filler = openSync(join(dir, 'filler'), 'w')
  try {
    for (;;) writeSync(filler, Buffer.alloc(4096))
  } catch {}
  closeSync(filler)
  await writing
  t.equal((spool as Spool).active, false)
  t.match(warnings, [/the disk spool .* failed \(ENOSPC\); lines are kept in memory only/])
})

t.test('a long queue settled line by line: the spool keeps only what is unsettled', needsStore(), async (t) => {
  const { spool } = await start(t, tempDir(t))
  const queue = new TokenQueue(A, 1000)
  for (let i = 1; i <= 3000; i++) {
    queue.push('l', 1, 0)
    ;(spool as Spool).line(queue, 'l', 1, 0)
  }
  await (spool as Spool).flush()
  // A second record: what the next flush window read.
  queue.push('m', 1, 0)
  ;(spool as Spool).line(queue, 'm', 1, 0)
  // Out of order, as an eviction behind an entry in flight settles.
  ;(spool as Spool).settled(queue, 3, 1)
  ;(spool as Spool).settled(queue, 1, 2)
  for (let i = 4; i <= 2500; i++) (spool as Spool).settled(queue, i, 1)
  ;(spool as Spool).settled(queue, 2501, 500)
  // The first record is gone; the token's record keeps no ranges from before the second.
  await (spool as Spool).flush()
  ;(spool as Spool).settled(queue, 3001, 1)
  t.equal((spool as Spool).bytes, 0)
  await (spool as Spool).flush()
})

t.test('a write lmdb refuses (a key over its limit): one stderr line, memory only', needsStore(), async (t) => {
  const { spool, warnings } = await start(t, tempDir(t))
  const queue = new TokenQueue('t'.repeat(3000), 1000)
  queue.push('x', 1, 0)
  ;(spool as Spool).line(queue, 'x', 1, 0)
  await (spool as Spool).flush()
  t.match(warnings, [/failed \(Key size is larger than the maximum key size/])
})

t.test('the probe of a spool file reads it in a child process', needsStore(), async (t) => {
  const dir = tempDir(t)
  t.equal(await probeStore(join(dir, 'new.mdb')), undefined, 'a readable (here: new) file')
  writeFileSync(join(dir, 'bad.mdb'), 'no lmdb file'.repeat(1000))
  t.equal(await probeStore(join(dir, 'bad.mdb')), 'SIGSEGV', 'a damaged one crashes the child, not this process')
})

t.test('without the store package: a coded error that names it', async (t) => {
  const config = parseOptions({ apiKey: API_KEY, spoolDir: tempDir(t) }, {})
  await t.rejects(openSpool(config, createStats(), () => {}, Date.now(), () => { throw Object.assign(new Error('Cannot find module'), { code: 'MODULE_NOT_FOUND' }) }), {
    code: 'ERR_BITRIX24_MISSING_PACKAGE',
    option: 'spoolDir',
    message: /^pino-bitrix24-workflow: option "spoolDir" needs the package "lmdb": npm install lmdb \(MODULE_NOT_FOUND\)$/
  })
  t.throws(() => loadStore(() => { throw new Error('odd') }), /npm install lmdb \(error\)$/)
})

t.test('the rows a workflow used (maxRows) are kept with the spool: a restarted transport continues the budget', needsStore(), async (t) => {
  const dir = tempDir(t)
  const options = { maxRows: 6, flushInterval: 100 }
  const first = await start(t, dir)
  const h1 = await harness(t, options, {}, first.spool)
  // No fault here: once every request sent is answered, each is an entry delivered.
  const answered = (h: typeof h1): Promise<void> => waitFor(() => h.delivery.stats.entries === h.delivery.stats.requests, 'the answers')
  // Two rows: the first at once, the next one by the schedule (about 208 times the first's age).
  h1.delivery.add(A, 'a0')
  h1.clock.tick(100)
  await answered(h1)
  h1.delivery.add(A, 'a1')
  h1.clock.tick(30_000)
  await answered(h1)
  t.equal(h1.sim.entries(A).length, 2, 'two rows before the restart')
  await h1.delivery.close()
  await (first.spool as Spool).close()
  t.equal(spoolFiles(dir).length, 1, 'no line is left, but the rows used are')

  const second = await start(t, dir, {}, h1.clock.now())
  const kept = second.recovered?.tokens.find((r) => r.token === A)
  t.match(kept, { lines: [], completion: undefined, state: { used: 2 } })
  const h2 = await harness(t, options, {}, second.spool)
  // The spool keeps delivery's clock: the second process starts where the first one ended.
  h2.clock.tick(h1.clock.now() - h2.clock.now())
  replay(second.recovered, h2.delivery, new Drops(h2.stats, h2.reporter, () => {}, 1 << 20), h2.stats, h2.reporter, () => {})
  // A line every 10 minutes for 25 hours. The schedule spaces rows by the workflow's age: continued,
  // its third row falls due about 72 minutes after its first line, its fourth in days; begun afresh
  // (a control without the restored rows), its budget would write rows at once and 10 minutes later.
  const control = await harness(t, options)
  control.clock.tick(h1.clock.now() - control.clock.now())
  for (let i = 0; i < 150; i++) {
    for (const h of [h2, control]) {
      h.delivery.add(A, `b${i}`)
      h.clock.tick(600_000)
      await answered(h)
    }
  }
  t.equal(control.sim.entries(A).length, 2, 'begun afresh: two more rows')
  t.equal(h2.sim.entries(A).length, 1, 'continued: one more row')
  t.equal(h2.delivery.rows.of(A, h2.clock.now()).used, 3, 'the rows used before the restart count')
  h2.delivery.complete(A, 'done', {})
  await h2.delivery.flush()
  const rows = h1.sim.entries(A).length + h2.sim.entries(A).length
  t.equal(rows, 4, 'three log rows and the completion\'s, across the restart')
  t.ok(rows <= options.maxRows, 'within maxRows')
  t.equal(h2.stats.delivered, 151, 'every line delivered, none left out')
  await h2.delivery.close()
  await (second.spool as Spool).close()
  t.same(readdirSync(dir), [], 'the completed workflow\'s rows are forgotten: nothing is left')
})

t.test('states: removed with undefined, at most maxTokens (the oldest go), and kept by a spool with nothing else', needsStore(), async (t) => {
  const dir = tempDir(t)
  const first = await start(t, dir, { maxTokens: 2 })
  const spool = first.spool as Spool
  spool.setState('wf.never', undefined)
  await spool.flush()
  t.equal(first.stats.spooled, 0)
  spool.setState('wf.1', { used: 1 })
  spool.setState('wf.2', { used: 2 })
  spool.setState('wf.3', { used: 3 })
  spool.setState('wf.2', undefined)
  await spool.close()
  const second = await start(t, dir)
  t.same(second.recovered?.tokens.map((r) => [r.token, r.state]), [['wf.3', { used: 3 }]], 'wf.1 went over maxTokens, wf.2 was removed')
})
