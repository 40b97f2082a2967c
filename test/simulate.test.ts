// The simulator command: in-process through run() (what coverage measures),
// and as the built binary in a child process, answering the curl of the API's
// own page.

import t from 'tap'
import { spawn, execFile } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { run } from '../lib/cli'
import { parseSimulateArgs, simulateUsage } from '../lib/cli-args'
import { DEFAULT_SIMULATE_PORT, showLanded } from '../lib/simulate'
import type { Simulator } from '../lib/simulator'
import { untracked } from './fixtures/untracked'

const CLI = join(__dirname, '..', 'dist', 'bin', 'cli.js')
const CURL = readFileSync(join(__dirname, 'fixtures', 'activity-log-curl.sh'), 'utf8')

function io (argv: string[]) {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const signals = new EventEmitter()
  let out = ''
  let err = ''
  stdout.on('data', (c: Buffer) => { out += c.toString() })
  stderr.on('data', (c: Buffer) => { err += c.toString() })
  let started: (sim: Simulator) => void = () => {}
  const listening = new Promise<Simulator>((resolve) => { started = resolve })
  return {
    run: async () => await run({ argv, stdin: new PassThrough(), stdout, stderr, signals, started }),
    listening,
    signals,
    out: () => out,
    err: () => err
  }
}

t.test('arguments: --port N, --port=N, --help; mistakes carry a code', async (t) => {
  t.same(parseSimulateArgs([]), { command: 'simulate', port: DEFAULT_SIMULATE_PORT })
  t.same(parseSimulateArgs(['--port', '0']), { command: 'simulate', port: 0 })
  t.same(parseSimulateArgs(['--port=8080']), { command: 'simulate', port: 8080 })
  t.same(parseSimulateArgs(['-h']), { command: 'simulate-help' })
  t.throws(() => parseSimulateArgs(['--prot', '1']), { code: 'ERR_BITRIX24_USAGE', message: 'simulate takes --port N only, got "--prot"; did you mean --port?' })
  t.throws(() => parseSimulateArgs(['x']), { message: 'simulate takes --port N only, got "x"' })
  t.throws(() => parseSimulateArgs(['--port']), { message: /got nothing$/ })
  t.throws(() => parseSimulateArgs(['--port', '70000']), { message: /got "70000"$/ })
  t.match(simulateUsage(), /^Usage: pino-bitrix24-workflow simulate \[--port N\]/)

  const help = io(['simulate', '--help'])
  t.equal(await help.run(), 0)
  t.equal(help.out(), simulateUsage())
  const bad = io(['simulate', '--port', 'x'])
  t.equal(await bad.run(), 1)
  t.equal(bad.err(), 'pino-bitrix24-workflow: ERR_BITRIX24_USAGE: flag --port takes a port from 0 to 65535 (0: any free one), got "x"\n')
})

t.test('shows each workflow\'s rows as they land, cleaned and bounded', async (t) => {
  t.equal(showLanded({ kind: 'entry', eventToken: 'wf.readme.activity', message: '12:00:00 INFO a\n12:00:01 INFO b' }),
    'wf.rea…vity   | 12:00:00 INFO a\nwf.rea…vity   | 12:00:01 INFO b\n')
  const many = showLanded({ kind: 'entry', eventToken: 'wf.1', message: Array.from({ length: 25 }, (_, i) => `row ${i}\u001b[2J ${'x'.repeat(300)}`).join('\n') })
  const rows = many.trimEnd().split('\n')
  t.equal(rows.length, 21, '20 rows and a count of the rest')
  t.equal(rows.at(-1), 'w….1          | … 5 more rows in this entry')
  t.ok(rows.every((row) => row.length <= 200), 'each row cut')
  t.notOk(many.includes('\u001b'), 'no escape sequences reach the terminal')
  t.equal(showLanded({ kind: 'completion', eventToken: 'wf.1', message: '', returnValues: { ok: 1 } }), 'w….1          | completed, returnValues {"ok":1}\n')
  t.equal(showLanded({ kind: 'completion', eventToken: 'wf.1', message: 'done' }), 'w….1          | done\nw….1          | completed, returnValues {}\n')
  t.match(showLanded({ kind: 'ignored', eventToken: 'wf.1', message: 'late' }), /after the completion/)
})

t.test('in-process: prints the exports, shows rows, stops on a signal', async (t) => {
  const h = io(['simulate', '--port', '0'])
  const code = h.run()
  const sim = await h.listening
  t.match(h.out(), `Vibe API simulator on ${sim.url} (Ctrl-C stops it)`)
  t.match(h.out(), `\n  export BITRIX24_API_KEY=vibe_api_test_key\n  export BITRIX24_BASE_URL=${sim.url}\n`)
  const post = async (path: string, body: unknown, key = 'vibe_api_test_key') => await fetch(sim.url + path, {
    method: 'POST', headers: { 'X-Api-Key': key, 'Content-Type': 'application/json' }, body: JSON.stringify(body)
  })
  t.equal((await post('/v1/workflows/activity-log', { eventToken: 'wf.sim', logMessage: 'hello' })).status, 200)
  t.equal((await post('/v1/workflows/event', { eventToken: 'wf.sim', returnValues: { a: 1 } })).status, 200)
  t.equal((await post('/v1/workflows/activity-log', { eventToken: 'wf.sim', logMessage: 'late' })).status, 200)
  t.match(h.out(), /w…im +\| hello\nw…im +\| completed, returnValues \{"a":1\}\nw…im +\| \(after the completion/)
  h.signals.emit('SIGTERM')
  t.equal(await code, 0)
  t.equal(h.err(), '')

  const other = io(['simulate', '--port', '0'])
  const running = other.run()
  const busy = await other.listening
  const clash = io(['simulate', `--port=${new URL(busy.url).port}`])
  t.equal(await clash.run(), 1)
  t.match(clash.err(), /^pino-bitrix24-workflow: ERR_BITRIX24_SIMULATOR: cannot listen on 127\.0\.0\.1:\d+ \(listen EADDRINUSE[^)]*\); choose another port with --port N\n$/)
  other.signals.emit('SIGINT')
  t.equal(await running, 0)
})

t.test('the binary: starts, prints the exports, answers the curl of the API\'s page', async (t) => {
  const child = spawn(...untracked(process.execPath, [CLI, 'simulate', '--port', '0']), { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString() })
  const exited = once(child, 'close')
  while (!/export BITRIX24_BASE_URL=(\S+)\n/.test(out)) await once(child.stdout, 'data')
  const url = (/export BITRIX24_BASE_URL=(\S+)\n/.exec(out) as RegExpExecArray)[1] as string
  t.match(out, /export BITRIX24_API_KEY=vibe_api_test_key\n/)
  // The page's curl as it stands, its host swapped for the simulator's, run by a shell.
  const command = CURL.replace(/^#.*\n/gm, '').trim().replace('https://vibecode.bitrix24.tech', url) + ' --silent --show-error'
  const answer = await new Promise<string>((resolve, reject) => execFile('sh', ['-c', command], (err, stdout, stderr) => err === null ? resolve(stdout) : reject(new Error(stderr))))
  t.same(JSON.parse(answer), { success: true, data: null })
  while (!out.includes('Step 1 complete')) await once(child.stdout, 'data')
  t.match(out, /xxx…zzz +\| Step 1 complete, awaiting confirmation\n/)
  child.kill('SIGINT')
  const [code] = await exited
  t.equal(code, 0)
})
