import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Reporter, shortToken } from '../lib/reporter'
import type { Clock } from '../lib/clock'

const PREFIX = 'pino-bitrix24-workflow: '

interface FakeClock extends Clock {
  time: number
}

function fakeClock (start = 1_000_000): FakeClock {
  const clock: FakeClock = {
    time: start,
    now: () => clock.time,
    setTimeout: () => {
      throw new Error('the reporter sets no timers')
    },
    clearTimeout: () => {
      throw new Error('the reporter sets no timers')
    }
  }
  return clock
}

function setup (): { reporter: Reporter, lines: string[], clock: FakeClock } {
  const lines: string[] = []
  const clock = fakeClock()
  return { reporter: new Reporter((text) => lines.push(text), clock), lines, clock }
}

t.test('the first problem of a kind is written at once, with prefix and newline', async (t) => {
  const { reporter, lines } = setup()
  t.equal(reporter.problem('auth', 'the API key was refused'), true)
  t.same(lines, [PREFIX + 'the API key was refused\n'])
})

t.test('repeats of a kind are only counted', async (t) => {
  const { reporter, lines } = setup()
  t.equal(reporter.count('auth'), 0, 'nothing yet')
  reporter.problem('auth', 'first')
  t.equal(reporter.problem('auth', 'second'), false)
  t.equal(reporter.problem('auth', 'third'), false)
  t.same(lines, [PREFIX + 'first\n'])
  t.equal(reporter.count('auth'), 3)
  t.equal(reporter.count('other'), 0)
  t.equal(reporter.suppressed, 0, 'repeats are not budget suppressions')
})

t.test('different kinds are written separately', async (t) => {
  const { reporter, lines } = setup()
  reporter.problem('a', 'A')
  reporter.problem('b', 'B')
  reporter.problem('a', 'A again')
  t.same(lines, [PREFIX + 'A\n', PREFIX + 'B\n'])
  t.equal(reporter.count('a'), 2)
  t.equal(reporter.count('b'), 1)
})

t.test('at most six lines a minute', async (t) => {
  const { reporter, lines, clock } = setup()
  const written: boolean[] = []
  for (let i = 0; i < 9; i++) {
    clock.time += 1000
    written.push(reporter.problem(`kind${i}`, `problem ${i}`))
  }
  t.same(written, [true, true, true, true, true, true, false, false, false])
  t.equal(lines.length, 6)
  t.equal(reporter.suppressed, 3)
  t.equal(reporter.count('kind8'), 1, 'a suppressed problem is still counted')
})

t.test('the budget comes back a minute after the window opened', async (t) => {
  const { reporter, lines, clock } = setup()
  const start = clock.time
  for (let i = 0; i < 6; i++) reporter.problem(`kind${i}`, `problem ${i}`)
  clock.time = start + 59_999
  t.equal(reporter.problem('late', 'still in the window'), false)
  clock.time = start + 60_000
  t.equal(reporter.problem('new', 'next window'), true)
  t.equal(lines.at(-1), PREFIX + 'next window\n')
  t.equal(lines.length, 7)
  // The new window opened at start + 60 s.
  for (let i = 0; i < 5; i++) reporter.problem(`more${i}`, 'x')
  t.equal(reporter.problem('one too many', 'x'), false)
  t.equal(reporter.suppressed, 2)
})

t.test('always() writes whatever the budget, and does not spend it', async (t) => {
  const { reporter, lines } = setup()
  for (let i = 0; i < 6; i++) reporter.problem(`kind${i}`, `problem ${i}`)
  t.equal(reporter.problem('over', 'over budget'), false)
  reporter.always('delivered 5 lines in 1 entries')
  reporter.always('and again')
  t.same(lines.slice(-2), [PREFIX + 'delivered 5 lines in 1 entries\n', PREFIX + 'and again\n'])

  const fresh = setup()
  for (let i = 0; i < 10; i++) fresh.reporter.always(`summary ${i}`)
  t.equal(fresh.reporter.problem('p', 'still has its budget'), true)
  t.equal(fresh.reporter.suppressed, 0)
})

t.test('the first line opens the window whenever it comes', async (t) => {
  const lines: string[] = []
  const clock = fakeClock(0)
  const reporter = new Reporter((text) => lines.push(text), clock)
  t.equal(reporter.problem('a', 'at time zero'), true)
  t.same(lines, [PREFIX + 'at time zero\n'])
})

t.test('shortToken keeps enough to tell tokens apart, not enough to use one', async (t) => {
  t.equal(shortToken(''), '…')
  t.equal(shortToken('abc'), 'abc…')
  t.equal(shortToken('abcdefghijkl'), 'abc…', '12 characters: a short prefix only')
  t.equal(shortToken('abcdefghijklm'), 'abcdef…jklm', '13 characters: head and tail')
  const token = 'c5f8a1e2b3d4e5f60718293a4b5c6d7e'
  const short = shortToken(token)
  t.equal(short, 'c5f8a1…6d7e')
  t.ok(short.length - 1 < token.length / 2, 'less than half of the token')
})

// writeStderr runs in a child process: its fd 2 has to be a pipe, a full
// non-blocking socket, or closed, none of which this test process can afford.
async function child (code: string, stderr: 'pipe' | net.Socket): Promise<{ status: number | null, stdout: string, stderr: string }> {
  const reporter = JSON.stringify(join(__dirname, '..', 'lib', 'reporter.ts'))
  const script = `const fs = require('node:fs')\nconst { writeStderr } = require(${reporter})\n${code}`
  const proc = spawn(process.execPath, [...process.execArgv, '-e', script], { stdio: ['ignore', 'pipe', stderr] })
  let out = ''
  let err = ''
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => { out += d })
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => { err += d })
  const [status] = await once(proc, 'close')
  return { status, stdout: out, stderr: err }
}

t.test('writeStderr writes synchronously to fd 2', async (t) => {
  const res = await child(`
writeStderr('${PREFIX}first\\n')
writeStderr('${PREFIX}second\\n')
process.exit(0)
`, 'pipe')
  t.equal(res.status, 0)
  t.equal(res.stderr, `${PREFIX}first\n${PREFIX}second\n`, 'written before an immediate exit')
})

t.test('writeStderr gives up on a pipe that stays full, and ignores a closed fd', async (t) => {
  // fd 2 of the child is a non-blocking socket whose reader never reads.
  const dir = mkdtempSync(join(tmpdir(), 'reporter-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const sockets: net.Socket[] = []
  const server = net.createServer({ pauseOnConnect: true }, (s) => sockets.push(s))
  server.listen(join(dir, 's'))
  await once(server, 'listening')
  const client = net.connect(join(dir, 's'))
  await once(client, 'connect')
  t.teardown(() => {
    client.destroy()
    for (const s of sockets) s.destroy()
    server.close()
  })

  const res = await child(`
const chunk = Buffer.alloc(65536, 120)
let full = false
for (let i = 0; i < 100000 && !full; i++) {
  try { fs.writeSync(2, chunk) } catch (err) { full = err.code === 'EAGAIN' }
}
let again = 'written'
try { fs.writeSync(2, 'x') } catch (err) { again = err.code }
writeStderr('lost\\n')
const returned = true
fs.closeSync(2)
writeStderr('closed\\n')
process.stdout.write(JSON.stringify({ full, again, returned }))
`, client)
  t.equal(res.status, 0, 'the child was not blocked nor crashed')
  t.same(JSON.parse(res.stdout), { full: true, again: 'EAGAIN', returned: true })
})
