import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import t, { type Test } from 'tap'
import type { ReplayedEvent } from '../lib/events'
import { startSimulator } from '../lib/simulator'
import { readSpools } from '../lib/spool-read'
import { loadStore } from '../lib/spool-store'
import { createTransport, type TransportStream } from '../lib/transport'
import { API_KEY } from './fixtures/harness'
import { needsStore } from './fixtures/store'
import { untrackLibChildren } from './fixtures/untracked'

// Its spool-file probes (child processes of lib/spool-store.ts) run without tap's tracking.
untrackLibChildren()

// The transport with spoolDir, in-process: start-up, replay, close, and the
// missing store. Across processes: spool-processes.test.ts.

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'b24-spool-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function closed (stream: TransportStream): Promise<void> {
  return new Promise((resolve) => {
    stream.once('close', () => resolve())
    stream.end()
  })
}

const missing = (): never => { throw Object.assign(new Error('Cannot find module \'lmdb\''), { code: 'MODULE_NOT_FOUND' }) }

t.test('what a closed transport could not send is replayed by the next one with the same spoolDir', needsStore(), async (t) => {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const spoolDir = tempDir(t)
  const stderr: string[] = []
  sim.stall(true)
  const first = await createTransport({ apiKey: API_KEY, baseUrl: sim.url, spoolDir, closeTimeout: 100, maxRequestsPerSecond: 0 }, { stderr: (line) => { stderr.push(line) } })
  const log = pino(first).child({ eventToken: 'wf.spooled' })
  log.info('one')
  log.info('two')
  await closed(first)
  // Both went in the entry in flight at closeTimeout: of unknown outcome, never dropped; the spool keeps them.
  t.equal(first.stats.unknown, 2, 'in flight at the deadline')
  t.equal(first.stats.dropped.shutdown, 0)
  t.equal(first.stats.spooled, 2)
  sim.stall(false)
  const second = await createTransport({ apiKey: API_KEY, baseUrl: sim.url, spoolDir, maxRequestsPerSecond: 0 }, { stderr: (line) => { stderr.push(line) } })
  const replayed = new Promise<ReplayedEvent>((resolve) => second.once('bitrix24:replayed', resolve))
  pino(second).child({ eventToken: 'wf.spooled' }).info('three')
  t.match(await replayed, { lines: 2, completions: 0, tokens: 1, possibleDuplicates: 1, expired: 0, spools: 1 })
  await closed(second)
  t.same(sim.entries('wf.spooled').join('\n').replace(/\d\d:\d\d:\d\d INFO /g, '').split('\n'), ['one', 'two', 'three'], 'the left-over lines first')
  t.equal(second.stats.replayed, 2)
  // Delivered, the lines left the spool; what stays is the workflow's rows used (maxRows), for the next
  // start: the first process's row and the second's, one budget.
  const left = readdirSync(spoolDir).filter((name) => name.endsWith('.mdb')).map((name) => join(spoolDir, name))
  t.equal(left.length, 1, 'the ended process\'s file was taken over')
  const { recovered } = await readSpools(loadStore(), left, Infinity, Date.now(), () => {})
  t.match(recovered, { lines: 0, completions: 0, tokens: [{ token: 'wf.spooled', lines: [], completion: undefined, state: { used: 1 + second.stats.rows } }] })
  t.match(stderr.join(''), /replaying from 1 spool of ended processes: 2 lines and 0 completions of 1 workflow/)
})

t.test('a spool that cannot start: one stderr line, the transport runs from memory', needsStore(), async (t) => {
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  const file = join(tempDir(t), 'file')
  writeFileSync(file, '')
  const stderr: string[] = []
  const stream = await createTransport({ apiKey: API_KEY, baseUrl: sim.url, spoolDir: join(file, 'spool'), maxRequestsPerSecond: 0 }, { stderr: (line) => { stderr.push(line) } })
  pino(stream).child({ eventToken: 'wf.memory' }).info('kept in memory')
  await closed(stream)
  t.equal(sim.entries('wf.memory').length, 1)
  t.match(stderr, [/^pino-bitrix24-workflow: the disk spool cannot start in .* \(ENOTDIR\); lines are kept in memory only/])
})

t.test('without the store package: in-process start-up rejects naming it; in pino\'s worker the transport is disabled', async (t) => {
  const spoolDir = tempDir(t)
  await t.rejects(createTransport({ apiKey: API_KEY, spoolDir }, { loadStore: missing, worker: false }), { code: 'ERR_BITRIX24_MISSING_PACKAGE', option: 'spoolDir' })
  const stderr: string[] = []
  const stream = await createTransport({ apiKey: API_KEY, spoolDir }, { loadStore: missing, worker: true, stderr: (line) => { stderr.push(line) } })
  pino(stream).info({ eventToken: 'wf.x' }, 'discarded')
  await closed(stream)
  t.match(stderr, [/ERR_BITRIX24_MISSING_PACKAGE: option "spoolDir" needs the package "lmdb": npm install lmdb \(MODULE_NOT_FOUND\); transport disabled/])
  t.equal(stream.stats.dropped.disabled, 1)
})

t.test('a transport disabled after its spool started (a level the logger lacks) still releases the spool', needsStore(), async (t) => {
  const spoolDir = tempDir(t)
  const stderr: string[] = []
  const stream = await createTransport({ apiKey: API_KEY, spoolDir, level: 'nosuchlevel' }, { worker: true, stderr: (line) => { stderr.push(line) } })
  await closed(stream)
  t.match(stderr, [/option "level" must be a level of the logger/])
  t.same(readdirSync(spoolDir), [], 'its lock and empty spool are gone')
})
