// The pipe mode, two ways: run() in-process with PassThrough streams (this is
// what coverage measures), and the built binary as a child process, fed
// through a real pipe, against a simulator running in this process.

import t from 'tap'
import { type ChildProcess, spawn } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import { existsSync, openSync, closeSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { version } from '../package.json'
import { MAX_LINE_LENGTH, type RunIO, run } from '../lib/cli'
import { OPTION_FLAGS } from '../lib/cli-args'
import { type Simulator, startSimulator } from '../lib/simulator'
import { untracked } from './fixtures/untracked'

const KEY = 'vibe_api_test_key'
const CLI = join(__dirname, '..', 'dist', 'bin', 'cli.js')

async function simulator (tt: tap.Test, opts?: Parameters<typeof startSimulator>[0]): Promise<Simulator> {
  const sim = await startSimulator(opts)
  tt.teardown(() => sim.close())
  return sim
}

/** Bounded polling, for simulator state that has no event of its own. */
async function until (tt: tap.Test, what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) {
      tt.fail(`timed out waiting for ${what}`)
      return
    }
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

function line (token: string, msg: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ level: 30, time: 1700000000000, pid: 1, hostname: 'h', msg, eventToken: token, ...extra }) + '\n'
}

/** Every delivered line of a token, in order, whatever the entries were. */
function delivered (sim: Simulator, token: string): string[] {
  return sim.entries(token).flatMap((entry) => entry.split('\n'))
}

// ─── in-process ────────────────────────────────────────────────────────────

interface Harness {
  io: RunIO
  stdin: PassThrough
  stdout: PassThrough
  stderr: PassThrough
  out: () => Buffer
  err: () => string
}

function harness (argv: string[], extra: Partial<RunIO> = {}): Harness {
  const stdin = new PassThrough()
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const outChunks: Buffer[] = []
  const errChunks: Buffer[] = []
  stdout.on('data', (c: Buffer) => outChunks.push(c))
  stderr.on('data', (c: Buffer) => errChunks.push(Buffer.from(c)))
  return {
    io: { argv, stdin, stdout, stderr, env: { BITRIX24_API_KEY: KEY }, ...extra },
    stdin,
    stdout,
    stderr,
    out: () => Buffer.concat(outChunks),
    err: () => Buffer.concat(errChunks).toString()
  }
}

const fast = (sim: Simulator): string[] => ['--base-url', sim.url, '--flush-interval', '5', '--message-format', '{msg}', '--max-requests-per-second', '0']

t.test('run: --help and --version', async tt => {
  const help = harness(['--help'])
  tt.equal(await run(help.io), 0)
  tt.match(help.out().toString(), /^Usage: node app\.js \| pino-bitrix24-workflow/)
  tt.equal(help.err(), '')
  const ver = harness(['-v'])
  tt.equal(await run(ver.io), 0)
  tt.equal(ver.out().toString(), version + '\n')
})

t.test('run: --help to a stdout that is gone still exits 0', async tt => {
  const h = harness(['--help'])
  h.stdout.destroy(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))
  tt.equal(await run(h.io), 0)
  await new Promise((resolve) => setImmediate(resolve))
  tt.equal(h.err(), '')
  tt.equal(h.stdin.readableFlowing, null, 'stdin was never read')
})

t.test('run: a usage error and an invalid option exit 1 without reading stdin', async tt => {
  const unknown = harness(['--bogus=vibe_api_SECRET'])
  tt.equal(await run(unknown.io), 1)
  tt.equal(unknown.err(), 'pino-bitrix24-workflow: ERR_BITRIX24_USAGE: unknown flag --bogus (see --help)\n')
  tt.equal(unknown.out().length, 0)

  const invalid = harness(['--api-key', 'vibe_api_SECRET', '--concurrency', '0'])
  tt.equal(await run(invalid.io), 1)
  tt.equal(invalid.err(),
    'pino-bitrix24-workflow: ERR_BITRIX24_INVALID_OPTION: option "concurrency" must be an integer from 1 to 256, got 0\n' +
    'pino-bitrix24-workflow: set it with --concurrency (see --help)\n')
  tt.equal(invalid.stdin.readableFlowing, null, 'stdin was never read')

  // The level is checked when the transport starts.
  const level = harness(['--level', 'loud'])
  tt.equal(await run(level.io), 1)
  tt.match(level.err(), /option "level" must be a level of the logger, got "loud"\n.*set it with --level/)

  const missing = harness([], { env: {} })
  tt.equal(await run(missing.io), 1)
  tt.match(missing.err(), /option "apiKey" must be a Vibe API key \(or env BITRIX24_API_KEY\), got nothing\n.*--api-key/)
})

t.test('run: without env, process.env is read', async tt => {
  const saved = process.env.BITRIX24_API_KEY
  process.env.BITRIX24_API_KEY = 'vibe_api_from_process_env'
  tt.teardown(() => {
    if (saved === undefined) delete process.env.BITRIX24_API_KEY
    else process.env.BITRIX24_API_KEY = saved
  })
  const sim = await simulator(tt, { apiKeys: ['vibe_api_from_process_env'] })
  const h = harness([...fast(sim), '--no-tee'], { env: undefined })
  const done = run(h.io)
  h.stdin.end(line('tok-env', 'from env'))
  tt.equal(await done, 0)
  tt.same(delivered(sim, 'tok-env'), ['from env'])
})

t.test('run: delivers every line in order per token, tees by default', async tt => {
  const sim = await simulator(tt)
  // --max-rows 0: the row budget would let one entry grow past maxEntryBytes at close.
  const h = harness([...fast(sim), '--max-entry-bytes', '256', '--max-rows', '0'])
  const done = run(h.io)
  let input = ''
  const want: Record<string, string[]> = { a: [], b: [], c: [] }
  for (let i = 0; i < 60; i++) {
    const token = 'abc'[i % 3] as string
    want[token]?.push(`line ${i} of ${token}`)
    input += line(`tok-${token}`, `line ${i} of ${token}`)
  }
  // Chunks that cut lines (and a multi-byte character) anywhere.
  const bytes = Buffer.from(input + line('tok-a', 'last é'))
  for (let at = 0; at < bytes.length; at += 37) h.stdin.write(bytes.subarray(at, at + 37))
  h.stdin.end()
  tt.equal(await done, 0)
  for (const token of ['a', 'b', 'c']) {
    const expected = token === 'a' ? [...want.a as string[], 'last é'] : want[token]
    tt.same(delivered(sim, `tok-${token}`), expected, `token ${token}`)
  }
  tt.ok(sim.entries('tok-a').length > 1, 'several entries per token')
  tt.ok(h.out().equals(bytes), 'stdout is stdin byte for byte')
  tt.equal(h.err(), '')
})

t.test('run: reads another app\'s logs with --message-key, --error-key and --custom-levels', async tt => {
  const sim = await simulator(tt)
  const args = ['--base-url', sim.url, '--flush-interval', '5', '--max-requests-per-second', '0', '--no-tee',
    '--message-format', '{level} {message}', '--message-key', 'message', '--error-key', 'error',
    '--custom-levels', 'notice:35,critical:55', '--level', 'notice', '--error-stack-frames', '1']
  const h = harness(args)
  const done = run(h.io)
  const stack = 'Error: down\n    at connect (/app/db.js:1:1)\n    at main (/app/main.js:2:2)'
  const at = (level: number, message: string, extra: Record<string, unknown> = {}): string =>
    JSON.stringify({ level, time: 1, message, eventToken: 'tok-app', ...extra }) + '\n'
  h.stdin.end(at(30, 'below the level') + at(35, 'Noticed', { rows: 2 }) +
    at(55, 'DB failed', { error: { type: 'Error', message: 'down', stack } }))
  tt.equal(await done, 0)
  tt.same(delivered(sim, 'tok-app'), [
    'NOTICE Noticed rows=2',
    'CRITICAL DB failed error=Error: down',
    '    at connect (/app/db.js:1:1)'
  ])
  tt.equal(h.err(), '')
})

t.test('run: --no-tee writes nothing to stdout', async tt => {
  const sim = await simulator(tt)
  const h = harness([...fast(sim), '--no-tee'])
  const done = run(h.io)
  h.stdin.end(line('tok', 'quiet'))
  tt.equal(await done, 0)
  tt.equal(h.out().length, 0)
  tt.same(delivered(sim, 'tok'), ['quiet'])
})

t.test('run: garbage does not stop it; a last line without newline counts', async tt => {
  const sim = await simulator(tt)
  const h = harness([...fast(sim), '--no-tee'])
  const done = run(h.io)
  h.stdin.write(line('tok', 'one'))
  h.stdin.write('\n\nnot json\n[1,2]\n42\nnull\n"eventToken"\n{"eventToken":\n[{"eventToken":"tok"}]\n')
  h.stdin.write(Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0a, 0x1b, 0x5b, 0x33, 0x31, 0x6d, 0x0d, 0x0a]))
  h.stdin.write(line('tok', 'two'))
  h.stdin.end(line('tok', 'three').trimEnd())
  tt.equal(await done, 0)
  tt.same(delivered(sim, 'tok'), ['one', 'two', 'three'])
  tt.equal(h.err(), '', 'garbage is not a problem to report')
})

t.test('run: a line longer than the cap is skipped, the next one is not', async tt => {
  const sim = await simulator(tt)
  const h = harness([...fast(sim), '--no-tee'])
  const done = run(h.io)
  const mib = Buffer.alloc(1024 * 1024, 'x')
  h.stdin.write(line('tok', 'before'))
  h.stdin.write('{"eventToken":"tok","msg":"')
  for (let i = 0; i <= MAX_LINE_LENGTH / mib.length; i++) h.stdin.write(mib)
  h.stdin.write('"}\n')
  h.stdin.end(line('tok', 'after'))
  tt.equal(await done, 0)
  tt.same(delivered(sim, 'tok'), ['before', 'after'])
  tt.match(h.err(), /closed: delivered 2 lines in \d+ entr(y|ies); dropped 1 line \(lineTooLong 1\)/, 'the skipped line is counted')
})

t.test('run: a terminal on stdin gets a hint on stderr', async tt => {
  const sim = await simulator(tt)
  const h = harness([...fast(sim), '--no-tee'])
  Object.assign(h.stdin, { isTTY: true })
  const done = run(h.io)
  h.stdin.end()
  tt.equal(await done, 0)
  tt.match(h.err(), /reading log lines from the terminal; pipe an app into it/)
})

t.test('run: quiet silences the terminal hint too', async tt => {
  const sim = await simulator(tt)
  for (const [argv, env] of [[['--quiet'], {}], [[], { BITRIX24_QUIET: '1' }]] as const) {
    const h = harness([...fast(sim), '--no-tee', ...argv], { env: { BITRIX24_API_KEY: KEY, ...env } })
    Object.assign(h.stdin, { isTTY: true })
    const done = run(h.io)
    h.stdin.end()
    tt.equal(await done, 0)
    tt.equal(h.err(), '', `nothing on stderr with ${argv.length > 0 ? '--quiet' : 'BITRIX24_QUIET=1'}`)
  }
})

t.test('run: a signal stops reading and delivers what was read', async tt => {
  const sim = await simulator(tt)
  const signals = new EventEmitter()
  // A long flush interval: only the close sends the line.
  const h = harness([...fast(sim), '--flush-interval', '60000'], { signals })
  const done = run(h.io)
  const echoed = once(h.stdout, 'data')
  h.stdin.write(line('tok', 'read before the signal'))
  await echoed
  tt.equal(signals.listenerCount('SIGTERM'), 1)
  signals.emit('SIGTERM')
  tt.ok(h.stdin.destroyed, 'stdin is no longer read')
  tt.equal(await done, 0)
  tt.same(delivered(sim, 'tok'), ['read before the signal'])
  tt.equal(signals.listenerCount('SIGTERM'), 0)
  tt.equal(signals.listenerCount('SIGINT'), 0)
})

t.test('run: a signal while closing changes nothing; close gives up at closeTimeout', async tt => {
  const sim = await simulator(tt)
  sim.stall(true)
  const signals = new EventEmitter()
  // The stalled request alone would hold the close for requestTimeout (60 s);
  // the bound sits far from it and from closeTimeout, so load cannot break it.
  const h = harness([...fast(sim), '--no-tee', '--close-timeout', '300', '--request-timeout', '60000'], { signals })
  const done = run(h.io)
  h.stdin.end(line('tok', 'stuck'))
  await until(tt, 'the request to reach the server', () => sim.stats().requests >= 1)
  const start = Date.now()
  signals.emit('SIGINT')
  signals.emit('SIGINT')
  tt.equal(await done, 0)
  const took = Date.now() - start
  tt.ok(took < 300 + 5000, `closed after ${took} ms: at closeTimeout, not at requestTimeout`)
  tt.match(h.err(), /closed: delivered 0 lines in 0 entries; dropped 0 lines; outcome unknown for 1 line \(in flight at closeTimeout/)
})

t.test('run: a failing stdin ends the input like its end', async tt => {
  const sim = await simulator(tt)
  const h = harness([...fast(sim), '--no-tee'])
  const done = run(h.io)
  h.stdin.write(line('tok', 'before the failure'))
  await new Promise((resolve) => setImmediate(resolve))
  h.stdin.destroy(Object.assign(new Error('read EIO'), { code: 'EIO' }))
  tt.equal(await done, 0)
  tt.same(delivered(sim, 'tok'), ['before the failure'])
  tt.equal(h.err(), 'pino-bitrix24-workflow: read EIO\n')
})

t.test('run: stdout going away (EPIPE) stops the copy, not the delivery', async tt => {
  const sim = await simulator(tt)
  const h = harness([...fast(sim)])
  // Nobody reads this stdout: once full, only its error can release stdin.
  const stdout = new PassThrough({ highWaterMark: 16 })
  h.io.stdout = stdout
  const done = run(h.io)
  h.stdin.write(line('tok', 'one'))
  h.stdin.write(line('tok', 'two'))
  await new Promise((resolve) => setImmediate(resolve))
  stdout.destroy(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))
  for (let i = 0; i < 100; i++) h.stdin.write(line('tok', `after ${i}`))
  h.stdin.end()
  tt.equal(await done, 0)
  tt.same(delivered(sim, 'tok'), ['one', 'two', ...Array.from({ length: 100 }, (_, i) => `after ${i}`)])
  tt.equal(h.err(), '', 'EPIPE is expected and not reported')
})

t.test('run: another stdout error is reported, delivery goes on', async tt => {
  const sim = await simulator(tt)
  const h = harness([...fast(sim)])
  const done = run(h.io)
  const echoed = once(h.stdout, 'data')
  h.stdin.write(line('tok', 'one'))
  await echoed
  h.stdout.destroy(Object.assign(new Error('write EIO'), { code: 'EIO' }))
  h.stdin.end(line('tok', 'two'))
  tt.equal(await done, 0)
  tt.same(delivered(sim, 'tok'), ['one', 'two'])
  tt.equal(h.err(), 'pino-bitrix24-workflow: write EIO\n')
})

t.test('run: delivery failures are summed up on stderr, and the exit code is still 0', async tt => {
  const sim = await simulator(tt)
  const h = harness([...fast(sim), '--no-tee'], { env: { BITRIX24_API_KEY: 'vibe_api_wrong_key' } })
  const done = run(h.io)
  h.stdin.end(line('tok', 'refused'))
  tt.equal(await done, 0)
  tt.same(delivered(sim, 'tok'), [])
  tt.match(h.err(), /closed: delivered 0 lines in 0 entries; dropped 1 line \(auth 1\)/)
  tt.notMatch(h.err(), 'vibe_api_wrong_key')
})

// ─── child process ─────────────────────────────────────────────────────────

interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: Buffer
  stderr: string
}

// A clean environment: no API key from the developer's shell, and none of the
// test runner's hooks in the child.
function spawnCli (args: string[], env: Record<string, string> = {}, stdin: 'pipe' | number = 'pipe'): { child: ChildProcess, exit: Promise<Exit> } {
  const child = spawn(...untracked(process.execPath, [CLI, ...args]), {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: [stdin, 'pipe', 'pipe']
  })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout?.on('data', (c: Buffer) => out.push(c))
  child.stderr?.on('data', (c: Buffer) => err.push(c))
  // A child that has exited no longer reads: writing to it may fail with EPIPE.
  child.stdin?.on('error', () => {})
  const exit = new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }))
  })
  return { child, exit }
}

t.test('run: --level filters lines whose level is a label (formatters.level)', async tt => {
  const sim = await simulator(tt)
  const h = harness([...fast(sim), '--level', 'warn', '--no-tee'])
  const done = run(h.io)
  h.stdin.write(line('tok-lvl', 'info: hidden', { level: 'info' }))
  h.stdin.write(line('tok-lvl', 'warn: shown', { level: 'warn' }))
  h.stdin.end(line('tok-lvl', 'error: shown', { level: 'error' }))
  tt.equal(await done, 0)
  tt.same(delivered(sim, 'tok-lvl'), ['warn: shown', 'error: shown'])
})

t.test('run: --quiet writes nothing to stderr, not even the closing summary', async tt => {
  const sim = await simulator(tt)
  sim.killToken('tok-q')
  const h = harness([...fast(sim), '--quiet', '--no-tee'])
  const done = run(h.io)
  h.stdin.end(line('tok-q', 'refused'))
  tt.equal(await done, 0)
  tt.equal(h.err(), '')
})

// Misuse that must exit 1, name what is wrong and never echo a key. Every
// case runs in-process (run()); the binary runs one of each table, to show
// the same text reaches a real stderr with exit code 1.
const SECRET = 'vibe_api_SECRET_VALUE_1234'
const PLAIN_KEY = 'plainSECRETenvkey0123'

const WRONG_FLAG: Array<{ name: string, args: string[], env: Record<string, string>, match: RegExp }> = [
  { name: 'base-url', args: ['--base-url', SECRET], env: { BITRIX24_API_KEY: SECRET }, match: /option "baseUrl" must not hold an API key or session token, got a string of 26 characters that looks like a key or token \(not shown\)\n.*--base-url/ },
  { name: 'level', args: ['--level', SECRET], env: { BITRIX24_API_KEY: SECRET }, match: /option "level" must not hold an API key or session token/ },
  { name: 'flush-interval', args: ['--flush-interval', SECRET], env: { BITRIX24_API_KEY: SECRET }, match: /flag --flush-interval takes a number, got a string of 26 characters that looks like a key or token \(not shown\)/ },
  { name: 'the environment\'s key', args: ['--flush-interval', PLAIN_KEY], env: { BITRIX24_API_KEY: PLAIN_KEY }, match: /flag --flush-interval takes a number, got a string of 21 characters that looks/ },
  { name: 'a password with @', args: ['--base-url', 'https://user:p@SECRET@example.com?k=1'], env: { BITRIX24_API_KEY: SECRET }, match: /option "baseUrl" must be a URL without query, fragment or credentials, got "https:\/\/…@example\.com\/\?…"/ }
]

const INVALID: Array<{ args: string[], env?: Record<string, string>, match: RegExp }> = [
  { args: ['--api-key', SECRET, '--flush-interval', '-1'], match: /option "flushInterval" must be an integer from 0 to 3600000, got -1\n.*--flush-interval/ },
  { args: ['--api-key', SECRET, '--flush-interval', '12abc'], match: /flag --flush-interval takes a number, got "12abc"/ },
  { args: [`--api-key=${SECRET}\n`], match: /option "apiKey" must be .*\(or env BITRIX24_API_KEY\), got a string of 27 characters\n.*--api-key/ },
  { args: [], env: { BITRIX24_API_KEY: `${SECRET}\r` }, match: /^pino-bitrix24-workflow: ERR_BITRIX24_INVALID_OPTION: env BITRIX24_API_KEY \(option "apiKey"\) must be .*, got a string of 27 characters\npino-bitrix24-workflow: fix or unset env BITRIX24_API_KEY, or override it with --api-key\n$/ },
  { args: [], env: { BITRIX24_API_KEY: SECRET, BITRIX24_TIME_ZONE: 'Mars/Olympus' }, match: /env BITRIX24_TIME_ZONE \(option "timeZone"\) must be an IANA time zone name.*, got "Mars\/Olympus"\n.*fix or unset env BITRIX24_TIME_ZONE, or override it with --time-zone\n$/ },
  { args: ['--base-url', 'http://example.com'], env: { BITRIX24_API_KEY: SECRET }, match: /option "baseUrl" must use https: unless its host is loopback.*\n.*--base-url/ },
  { args: ['--api-key', SECRET, '--on-rate-limit', 'panic'], match: /option "onRateLimit" must be "buffer" or "drop", got "panic"\n.*--on-rate-limit/ },
  { args: ['--api-key', SECRET, '--bogus'], match: /unknown flag --bogus/ },
  { args: ['--api-key', SECRET, SECRET], match: /unexpected argument #3/ },
  { args: [], match: /option "apiKey" must be a Vibe API key \(or env BITRIX24_API_KEY\), got nothing/ }
]

t.test('run: a key given to the wrong flag exits 1 and is never echoed', async tt => {
  for (const c of WRONG_FLAG) {
    const h = harness(c.args, { env: c.env })
    tt.equal(await run(h.io), 1, c.name)
    tt.match(h.err(), c.match, c.name)
    tt.notMatch(h.err(), 'SECRET', `${c.name}: no key on stderr`)
  }
})

t.test('run: an invalid option exits 1, names it, and never shows the key', async tt => {
  for (const c of INVALID) {
    const h = harness(c.args, { env: c.env ?? {} })
    tt.equal(await run(h.io), 1, c.args.join(' '))
    tt.match(h.err(), c.match)
    tt.notMatch(h.err(), 'SECRET', 'no key on stderr')
    tt.notMatch(h.out().toString(), 'SECRET', 'no key on stdout')
  }
})

// Each binary test is a child process of its own, mostly start-up and waiting
// on pipes: three run at once (tap's subtest jobs), in any order. They show
// what only a real process has: the bin's wiring, real pipes, fds, signals and
// exit codes. What the binary did besides is checked in-process above:
// --version by 'run: --help and --version', --no-tee by 'run: --no-tee writes
// nothing to stdout', garbage lines by 'run: garbage does not stop it; a last
// line without newline counts', and several tokens in order per token by
// 'run: delivers every line in order per token, tees by default' (a real pipe
// into the binary by 'tees stdin to stdout byte for byte' below).
t.test('binary', { jobs: 3 }, async tb => {
  if (!existsSync(CLI)) {
    tb.fail(`${CLI} is missing: run npm run build first`)
    return
  }

  tb.test('--help exits 0 and lists every flag', async tt => {
    const { exit } = spawnCli(['--help'])
    const res = await exit
    tt.equal(res.code, 0)
    const text = res.stdout.toString()
    for (const flag of OPTION_FLAGS) tt.match(text, `--${flag.type === 'boolean' ? '[no-]' : ''}${flag.name}`)
    tt.match(text, '--[no-]tee')
    tt.match(text, 'Env: BITRIX24_API_KEY')
    tt.equal(res.stderr, '')
  })

  tb.test('reads a file redirected to stdin too', async tt => {
    const sim = await simulator(tt)
    const file = join(tt.testdir(), 'app.ndjson')
    writeFileSync(file, line('tok', 'one') + line('tok', 'two'))
    const fd = openSync(file, 'r')
    const { exit } = spawnCli([...fast(sim), '--no-tee'], { BITRIX24_API_KEY: KEY }, fd)
    closeSync(fd)
    const res = await exit
    tt.equal(res.code, 0)
    tt.same(delivered(sim, 'tok'), ['one', 'two'])
  })

  tb.test('tees stdin to stdout byte for byte', async tt => {
    const sim = await simulator(tt)
    const parts: Buffer[] = []
    for (let i = 0; i < 2000; i++) {
      parts.push(Buffer.from(line(`tok-${i % 4}`, `tee ${i} ✓ ${'z'.repeat(i % 300)}`)))
      if (i % 100 === 0) parts.push(Buffer.from([0xff, 0x00, 0xc3, 0x0d, 0x0a, 0x0a, 0xe2, 0x82]), Buffer.from('\r\n[1]\n'))
    }
    parts.push(Buffer.from('no newline at the end é'))
    const input = Buffer.concat(parts)
    const { child, exit } = spawnCli(fast(sim), { BITRIX24_API_KEY: KEY })
    child.stdin?.end(input)
    const res = await exit
    tt.equal(res.code, 0)
    tt.equal(res.stdout.length, input.length)
    tt.ok(res.stdout.equals(input), 'identical bytes')
    tt.equal(delivered(sim, 'tok-1').length, 500)
  })

  tb.test('misuse exits 1 with the message on stderr, and never echoes the key', async tt => {
    // One case of each table; all of them run in-process above.
    for (const c of [WRONG_FLAG[0], INVALID[3]] as Array<{ args: string[], env?: Record<string, string>, match: RegExp }>) {
      // stdin stays open: an invalid command must not wait for it.
      const { child, exit } = spawnCli(c.args, c.env)
      const res = await exit
      child.stdin?.destroy()
      tt.equal(res.code, 1, c.args.join(' '))
      tt.match(res.stderr, c.match)
      tt.notMatch(res.stderr, 'SECRET', 'no key on stderr')
      tt.notMatch(res.stdout.toString(), 'SECRET', 'no key on stdout')
    }
  })

  tb.test('SIGTERM while the server is slow exits at closeTimeout, code 0', async tt => {
    const sim = await simulator(tt)
    sim.stall(true)
    const closeTimeout = 1000
    // The stalled request alone would hold the exit for requestTimeout (60 s): the
    // upper bound sits far from it and from closeTimeout, so load cannot break it.
    const { child, exit } = spawnCli([...fast(sim), '--close-timeout', String(closeTimeout), '--request-timeout', '60000', '--flush-interval', '0'], { BITRIX24_API_KEY: KEY })
    // stdin stays open: only the signal ends the run.
    child.stdin?.write(line('tok', 'held by the server'))
    await until(tt, 'the request to reach the server', () => sim.stats().requests >= 1)
    const start = Date.now()
    child.kill('SIGTERM')
    const res = await exit
    const took = Date.now() - start
    tt.equal(res.code, 0)
    tt.equal(res.signal, null)
    tt.ok(took < closeTimeout + 5000, `exited after ${took} ms`)
    tt.ok(took >= closeTimeout - 50, 'waited for delivery until closeTimeout')
    tt.match(res.stderr, /closed: delivered 0 lines in 0 entries; dropped 0 lines; outcome unknown for 1 line \(in flight at closeTimeout/)
  })

  tb.test('SIGINT stops reading and delivers what was read', async tt => {
    const sim = await simulator(tt)
    const { child, exit } = spawnCli([...fast(sim), '--flush-interval', '60000'], { BITRIX24_API_KEY: KEY })
    child.stdin?.write(line('tok', 'one') + line('tok', 'two'))
    // The tee shows the lines have been read.
    let seen = ''
    while (!seen.endsWith(line('tok', 'two'))) seen += String((await once(child.stdout as NodeJS.ReadableStream, 'data'))[0])
    child.kill('SIGINT')
    const res = await exit
    tt.equal(res.code, 0)
    tt.same(delivered(sim, 'tok'), ['one', 'two'])
  })

  tb.test('stdout closed early (| head) stops the copy, delivery goes on', async tt => {
    const sim = await simulator(tt)
    const { child, exit } = spawnCli(fast(sim), { BITRIX24_API_KEY: KEY })
    const stdin = child.stdin as NodeJS.WritableStream
    const echoed = once(child.stdout as NodeJS.ReadableStream, 'data')
    stdin.write(line('tok', 'first'))
    await echoed
    child.stdout?.destroy()
    const more: string[] = []
    for (let i = 0; i < 500; i++) {
      more.push(`after ${i}`)
      stdin.write(line('tok', `after ${i}`))
    }
    stdin.end()
    const res = await exit
    tt.equal(res.code, 0)
    tt.equal(res.stderr, '')
    tt.same(delivered(sim, 'tok'), ['first', ...more])
  })
})
