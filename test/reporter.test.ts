import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redactor } from '../lib/redact'
import { MAX_REPORT_LENGTH, oneLine, Reporter, shortToken } from '../lib/reporter'
import { harness } from './fixtures/harness'
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
    },
    unref: () => {
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

t.test('repeats of a kind are not written again', async (t) => {
  const { reporter, lines, clock } = setup()
  reporter.problem('auth', 'first')
  t.equal(reporter.problem('auth', 'second'), false)
  t.equal(reporter.problem('auth', 'third'), false)
  t.same(lines, [PREFIX + 'first\n'])
  t.equal(reporter.suppressed, 0, 'repeats are not budget suppressions')
  clock.time += 60_000
  t.equal(reporter.problem('auth', 'fourth'), false, 'not even when the budget is back')
  t.equal(reporter.problem('other', 'other'), true, 'another kind is')
})

t.test('say: each time as the budget allows, never remembered as a kind, so that a flapping connection does not use up the kinds', async (t) => {
  const { reporter, lines, clock } = setup()
  for (let i = 0; i < 3000; i++) {
    reporter.say(`went away ${i}`)
    clock.time += 60_000
  }
  t.equal(lines.length, 3000, 'every one, a minute apart')
  t.equal(reporter.problem('NEW', 'a new kind'), true)
  t.equal(reporter.problem('NEW', 'a new kind again'), false, 'still told once: no kind was used up')
})

t.test('different kinds are written separately', async (t) => {
  const { reporter, lines } = setup()
  reporter.problem('a', 'A')
  reporter.problem('b', 'B')
  reporter.problem('a', 'A again')
  t.same(lines, [PREFIX + 'A\n', PREFIX + 'B\n'])
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
  clock.time += 60_000
  t.equal(reporter.problem('kind8', 'problem 8 again'), true, 'a kind held back by the budget is written at its next occurrence that fits')
  t.equal(reporter.problem('kind8', 'problem 8 once more'), false, 'and then no more')
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

t.test('with a redactor, no configured secret reaches a line, whoever put it in the text', async (t) => {
  const lines: string[] = []
  const r = new Reporter((text) => { lines.push(text) }, { now: () => 0, setTimeout: () => 0, clearTimeout: () => {}, unref: () => {} }, new Redactor(['vibe_api_0123456789']))
  r.problem('HINT', 'the server says: use key vibe_api_0123456789')
  r.always('closed: vibe_api_0123456789')
  // Split by what cleaning takes out of a line: an escape sequence, a control character.
  r.always('echoed: vibe_api_\u001b[31m0123456789 and vibe_api_01234\u000056789')
  t.same(lines, [`${PREFIX}the server says: use key …\n`, `${PREFIX}closed: …\n`, `${PREFIX}echoed: … and …\n`])
})

t.test('shortToken keeps enough to tell tokens apart, not enough to use one', async (t) => {
  t.equal(shortToken(''), '…')
  t.equal(shortToken('abc'), 'a…bc')
  t.not(shortToken('wf.1'), shortToken('wf.2'), 'short tokens that differ at the end read apart')
  t.equal(shortToken('abcdefghijkl'), 'abc…jkl', '12 characters: head and tail')
  t.not(shortToken('wf.import.01'), shortToken('wf.import.02'))
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

t.test('oneLine: escape sequences, line breaks, controls and bidi characters never reach the terminal', async (t) => {
  t.equal(oneLine('plain text, ünïcödé ✓'), 'plain text, ünïcödé ✓', 'clean text as it is')
  t.equal(oneLine('\x1b[2J\rpino-bitrix24-workflow: forged'), ' pino-bitrix24-workflow: forged', 'no screen clear, no carriage return')
  t.equal(oneLine('one\ntwo\r\nthree\u2028four\u2029five\x85six\tseven'), 'one two three four five six seven', 'every line break is a space')
  t.equal(oneLine('\x1b[31mred\x1b[0m \x9b1mbold'), 'red bold', 'CSI sequences, 7- and 8-bit')
  t.equal(oneLine('\x1b]0;title\x07after \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\'), 'after link', 'OSC sequences (title, hyperlink)')
  t.equal(oneLine('a\x1bcb \x1b'), 'ab ', 'two-character escapes and a lone ESC')
  t.equal(oneLine('\x1b]never ends'), 'never ends', 'an unterminated OSC loses its introducer')
  t.equal(oneLine('\0a\x07b\x7fc\x9fd'), 'abcd', 'C0, DEL and C1 controls')
  t.equal(oneLine('user \u202eexe.txt\u202c \u2066x\u2069 \u200e\u200f\u061c'), 'user exe.txt x ', 'bidi controls')
})

t.test('oneLine caps the length, never splitting a surrogate pair', async (t) => {
  t.equal(oneLine('h'.repeat(100_000)).length, MAX_REPORT_LENGTH)
  t.equal(oneLine('abcdef', 4), 'abc…')
  t.equal(oneLine('ab😀cd', 4), 'ab…', 'the pair is left out whole')
  t.equal(oneLine('abcd', 4), 'abcd')
})

t.test('every line the reporter writes is one clean line, whatever the caller passes', async (t) => {
  const { reporter, lines } = setup()
  reporter.problem('a', 'hint: \x1b[2J\rpino-bitrix24-workflow: all good\nsecond line')
  reporter.problem('b', 'x'.repeat(100_000))
  reporter.always('summary\r\nforged')
  t.same(lines, [
    PREFIX + 'hint:  pino-bitrix24-workflow: all good second line\n',
    PREFIX + 'x'.repeat(MAX_REPORT_LENGTH - 1) + '…\n',
    PREFIX + 'summary forged\n'
  ])
})

t.test('kinds are remembered up to a cap: a server inventing codes cannot grow memory', async (t) => {
  const { reporter, lines, clock } = setup()
  for (let i = 0; i < 1024; i++) reporter.problem(`REJECTED:CODE_${i}`, `code ${i}`)
  t.equal(lines.length, 6, 'the budget holds')
  t.equal(reporter.problem('REJECTED:ONE_MORE', 'one more'), false, 'a new kind past the cap still meets the budget')
  t.equal(reporter.problem('COMPLETION_FAILED:x', 'complete it by hand'), false, 'one budget for everything: a failed completion too')
  t.equal(lines.length, 6)
  clock.time += 60_000
  t.equal(reporter.problem('REJECTED:CODE_3', 'again'), false, 'a remembered kind written before is not written again')
  t.equal(reporter.problem('REJECTED:CODE_7', 'code 7'), true, 'one remembered but held back by the budget is written now')
  t.equal(reporter.problem('REJECTED:ONE_MORE', 'one more'), true, 'one past the cap is written as the budget allows')
  t.equal(reporter.problem('REJECTED:ONE_MORE', 'one more'), true, 'each time: it is not remembered')
})

t.test('a hostile server\'s hint, warning, message and code reach stderr as one short clean line each', async (t) => {
  const h = await harness(t, { flushInterval: 0, maxRetries: 0 })
  const forged = '\x1b[2J\rpino-bitrix24-workflow: all entries delivered\n'
  h.sim.script({ status: 400, code: 'EVIL\x1b[2J\nCODE', hint: forged.repeat(100), warning: 'warn\r\n' + 'w'.repeat(5_000), message: forged })
  h.delivery.add('wf.\x1b[31mtoken-with-escape\n-and-more', 'a')
  await h.clock.runUntil(() => h.stats.dropped.rejected === 1, 50)
  // A 100 KB hint: the answer is cut at the client's cap and classified by status alone.
  h.sim.script({ status: 400, code: 'BIG', hint: 'h'.repeat(100_000) })
  h.delivery.add('wf.b', 'b')
  await h.clock.runUntil(() => h.stats.dropped.rejected === 2, 50)
  t.equal(h.stderr.length, 3, 'the warning, and one line per refused entry')
  for (const line of h.stderr) {
    t.ok(line.startsWith(PREFIX) && line.endsWith('\n'), 'our prefix, one newline at the end')
    t.equal(line.indexOf('\n'), line.length - 1, 'no other line break')
    t.notOk(line.includes('\x1b') || line.includes('\r') || line.includes('\x9b'), 'no escape, no carriage return')
    t.ok(line.length <= PREFIX.length + MAX_REPORT_LENGTH + 1, `bounded (${line.length})`)
  }
  t.match(h.stderr[0], /^pino-bitrix24-workflow: the server warns: warn w+…\n$/)
  t.match(h.stderr[1], /^pino-bitrix24-workflow: event token wf\.…more: HTTP 400 EVIL CODE: the server answered HTTP 400; the entry is dropped \(server message: {1,2}pino-bitrix24-workflow: all entries delivered/)
  t.match(h.stderr.join(''), /HTTP 400 HTTP_400/, 'the cut 100 KB answer is classified by its status')
})

t.test('a shortened token with an escape sequence, and a 500: clean lines, the retry said once', async (t) => {
  const h = await harness(t, { flushInterval: 0, maxRetries: 1 })
  h.sim.script({ code: 'BITRIX_ACCESS_DENIED' })
  h.delivery.add('wf.dead-token\x1b[2J', 'a')
  await h.clock.runUntil(() => h.stats.dropped.deadToken === 1, 50)
  h.sim.script({ code: 'INTERNAL_ERROR' })
  h.delivery.add('wf.other', 'b')
  await h.clock.runUntil(() => h.stats.entries === 1, 50)
  t.match(h.stderr[0], /^pino-bitrix24-workflow: event token wf.dea…: HTTP 403 BITRIX_ACCESS_DENIED/, 'the escape sequence in the token is gone whole')
  t.notOk(h.stderr[0]?.includes('\x1b'), 'no escape character')
  t.equal(h.stderr[1], 'pino-bitrix24-workflow: HTTP 500 INTERNAL_ERROR: the API failed internally; retrying (at most 1 time per entry)\n')
})
