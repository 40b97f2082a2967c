import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import t, { type Test } from 'tap'
import { adoptOrphans, holdLock, MAX_SOCKET_PATH, newId, ownerAlive, ownerOf, releaseLock, socketPath } from '../lib/spool-owner'
import { untracked } from './fixtures/untracked'

// Ownership is tested with real processes: a live owner is another process
// holding its lock; a dead one is one that was SIGKILLed.

const OWNER_MODULE = resolve(__dirname, '..', 'dist', 'lib', 'spool-owner.js')
const FIXTURES = join(__dirname, 'fixtures', 'spool')

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'b24-owner-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function start (t: Test, script: string, dir: string): { child: ChildProcess, line: Promise<string> } {
  const child = spawn(...untracked(process.execPath, [join(FIXTURES, script)]), { env: { PATH: process.env.PATH ?? '', SPOOL_DIR: dir, OWNER_MODULE } })
  t.teardown(() => { child.kill('SIGKILL') })
  const line = new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')))
    })
    child.on('close', (code) => reject(new Error(`${script} ended (${code}) before a line`)))
  })
  return { child, line }
}

function killed (child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.on('close', () => resolve())
    child.kill('SIGKILL')
  })
}

t.test('ids are new per transport and name their spool files', async (t) => {
  const a = newId()
  t.not(a, newId())
  t.equal(ownerOf(a + '.mdb'), a)
  t.equal(ownerOf(a + '.3.mdb'), a, 'an adopted spool belongs to its adopter')
  t.equal(ownerOf(a + '.mdb-lock'), undefined, 'lmdb\'s lock file is no spool')
  t.equal(ownerOf(a + '.mdb.corrupt'), undefined, 'a file moved aside is no spool')
  t.equal(ownerOf('notes.mdb'), undefined, 'a file of someone else is left alone')
})

t.test('an owner is alive while it holds its lock, gone once released', async (t) => {
  const dir = tempDir(t)
  const id = newId()
  t.equal(await ownerAlive(dir, id), false, 'never started')
  const server = await holdLock(dir, id)
  t.equal(await ownerAlive(dir, id), true)
  releaseLock(server, dir, id)
  t.notOk(existsSync(socketPath(dir, id)), 'the socket file goes with the lock')
  t.equal(await ownerAlive(dir, id), false)
})

t.test('a directory whose lock path is too long for a socket is refused with a clear reason', async (t) => {
  const dir = join(tempDir(t), 'x'.repeat(MAX_SOCKET_PATH))
  await t.rejects(holdLock(dir, newId()), /over 103 bytes; use a shorter spoolDir/)
})

t.test('a second lock on the same id fails: one owner per spool', async (t) => {
  const dir = tempDir(t)
  const id = newId()
  const server = await holdLock(dir, id)
  t.teardown(() => releaseLock(server, dir, id))
  await t.rejects(holdLock(dir, id), { code: 'EADDRINUSE' })
})

t.test('a live process keeps its spool; once SIGKILLed, its spool is adopted exactly once', async (t) => {
  const dir = tempDir(t)
  const owner = start(t, 'owner.js', dir)
  const id = (await owner.line).replace('held ', '')
  t.same(JSON.parse(await start(t, 'adopt.js', dir).line), [], 'another process leaves a live owner\'s spool alone')
  t.ok(existsSync(join(dir, id + '.mdb')))

  await killed(owner.child)
  t.ok(existsSync(socketPath(dir, id)), 'SIGKILL left its socket file behind')
  // Three processes start at once in the directory: exactly one gets the spool.
  const adopters = [start(t, 'adopt.js', dir), start(t, 'adopt.js', dir), start(t, 'adopt.js', dir)]
  const results = (await Promise.all(adopters.map((a) => a.line))).map((line) => JSON.parse(line) as string[])
  const winners = results.filter((r) => r.length === 1)
  t.equal(winners.length, 1, 'one adopter')
  t.same(results.filter((r) => r.length === 0).length, 2, 'the others found nothing to adopt')
  const adopted = (winners[0] as string[])[0] as string
  t.equal(readFileSync(adopted, 'utf8'), 'spool of ' + id, 'the file, renamed to its adopter')
  t.notOk(existsSync(socketPath(dir, id)), 'the dead owner\'s socket is cleaned up')
  t.notOk(readdirSync(dir).some((f) => f.startsWith(id)), 'nothing of the dead owner is left')
})

t.test('adoption in-process: a dead owner\'s files are renamed, its lock file removed; a live one and strangers are not touched', async (t) => {
  const dir = tempDir(t)
  const me = newId()
  const live = newId()
  const server = await holdLock(dir, live)
  t.teardown(() => releaseLock(server, dir, live))
  const dead = newId()
  for (const file of [`${dead}.mdb`, `${dead}.mdb-lock`, `${dead}.2.mdb`, `${live}.mdb`, `${me}.mdb`, 'notes.txt']) writeFileSync(join(dir, file), file)
  const { adopted, left } = await adoptOrphans(dir, me)
  t.equal(left, 0)
  t.same(adopted.map((p) => readFileSync(p, 'utf8')).sort(), [`${dead}.2.mdb`, `${dead}.mdb`])
  t.same(readdirSync(dir).filter((f) => !f.startsWith(me)).sort(), [`${live}.mdb`, `${live}.sock`, 'notes.txt'].sort())
})

t.test('two adopters racing in one process: the rename decides, each spool goes to one of them', async (t) => {
  const dir = tempDir(t)
  const dead = newId()
  writeFileSync(join(dir, `${dead}.mdb`), 'x')
  const [a, b] = await Promise.all([adoptOrphans(dir, newId()), adoptOrphans(dir, newId())])
  t.equal((a as { adopted: string[] }).adopted.length + (b as { adopted: string[] }).adopted.length, 1)
})

t.test('one start adopts at most its limits, oldest first and at least one file; the next start goes on', async (t) => {
  const dir = tempDir(t)
  const files: string[] = []
  for (let i = 0; i < 5; i++) {
    const file = `${newId()}.mdb`
    writeFileSync(join(dir, file), `${i} ${'x'.repeat(98)}`)
    // Oldest first: the first written is the oldest.
    utimesSync(join(dir, file), 1000 + i, 1000 + i)
    files.push(file)
  }
  const read = (paths: string[]): string[] => paths.map((p) => readFileSync(p, 'utf8').slice(0, 1))
  // Each adopter lives on (holds its lock), so what it adopted is its own.
  const adopter = async (): Promise<string> => {
    const id = newId()
    const server = await holdLock(dir, id)
    t.teardown(() => releaseLock(server, dir, id))
    return id
  }
  const first = await adoptOrphans(dir, await adopter(), { files: 2, bytes: Infinity })
  t.same(read(first.adopted), ['0', '1'], 'two files, the oldest')
  t.equal(first.left, 3, 'three left for later')
  const second = await adoptOrphans(dir, await adopter(), { files: 16, bytes: 250 })
  t.same(read(second.adopted), ['2', '3'], 'as many as fit in the bytes')
  t.equal(second.left, 1)
  const third = await adoptOrphans(dir, await adopter(), { files: 16, bytes: 10 })
  t.same(read(third.adopted), ['4'], 'at least one, however large')
  t.equal(third.left, 0)
  // A spool name that no longer leads to a file (as when another adopter took it meanwhile) counts as empty and new.
  const gone = `${newId()}.mdb`
  symlinkSync(join(dir, 'nowhere'), join(dir, gone))
  const fourth = await adoptOrphans(dir, await adopter(), { files: 16, bytes: 10 })
  t.equal(fourth.adopted.length, 1, 'taken like any other: reading it will say what it is')
})
