// The README's code blocks are examples users paste, so every js/ts block is
// run as written, as a file of its own in a child process, with the built
// package resolvable by name and BITRIX24_API_KEY and BITRIX24_BASE_URL
// pointing at a simulator in this process (another process than the app's,
// as the README advises). A ```js run block must exit 0; a ```js server block
// listens on PORT, gets one activity request as Bitrix24 posts it, must land
// that activity's rows and completion, and is then stopped; a ```ts block is
// stripped of its types first and runs like a `run` block. None may write to
// stderr (the transport reports every problem there). Every block is parsed
// first. New blocks are picked up by themselves.

import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { connect, type AddressInfo, createServer } from 'node:net'
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import vm from 'node:vm'
import ts from 'typescript'
import { startSimulator } from '../lib/simulator'
import { untracked } from './fixtures/untracked'

const root = join(__dirname, '..')

interface Block {
  lang: string
  attrs: string[]
  code: string
  /** 1-based line of the opening fence, for messages. */
  line: number
}

const JS = new Set(['js', 'javascript', 'cjs', 'mjs'])
const TS = new Set(['ts', 'typescript', 'mts', 'cts'])

function blocks (markdown: string): Block[] {
  const found: Block[] = []
  const fence = /^```([^\n`]*)\n([\s\S]*?)^```[ \t]*$/gm
  for (let m = fence.exec(markdown); m !== null; m = fence.exec(markdown)) {
    const [lang = '', ...attrs] = (m[1] as string).trim().split(/\s+/)
    found.push({ lang, attrs, code: m[2] as string, line: markdown.slice(0, m.index).split('\n').length })
  }
  return found
}

type Kind = 'commonjs' | 'module' | 'snippet' | 'typescript'

function kindOf (block: Block): Kind {
  if (TS.has(block.lang)) return 'typescript'
  if (block.lang === 'mjs' || /^\s*(import\s[^(]|export\s)/m.test(block.code)) return 'module'
  if (block.lang === 'cjs' || /\brequire\(/.test(block.code)) return 'commonjs'
  return 'snippet'
}

/** The syntax error of a block, or undefined. */
function syntaxError (block: Block): string | undefined {
  const kind = kindOf(block)
  try {
    if (kind === 'commonjs') {
      // How Node compiles a CommonJS module.
      vm.compileFunction(block.code, ['exports', 'require', 'module', '__filename', '__dirname'])
    } else if (kind === 'snippet') {
      // Compiled, never run: the snippet's free names belong to the text around it.
      new vm.Script(`(async function snippet () {\n${block.code}\n})`) // eslint-disable-line no-new
    } else {
      const { diagnostics = [] } = ts.transpileModule(block.code, {
        fileName: kind === 'module' ? 'block.mjs' : 'block.ts',
        reportDiagnostics: true,
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, allowJs: true }
      })
      if (diagnostics.length > 0) return diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')).join('; ')
    }
  } catch (err) {
    return String(err)
  }
  return undefined
}

const readme = readFileSync(join(root, 'README.md'), 'utf8')
const code = blocks(readme).filter((b) => JS.has(b.lang) || TS.has(b.lang))

t.test('the checker itself', async (t) => {
  const block = (lang: string, text: string): Block => ({ lang, attrs: [], code: text, line: 1 })
  t.match(syntaxError(block('js', "const x = require('x')\nawait x()\n")), /SyntaxError/, 'a CommonJS top-level await fails')
  t.equal(syntaxError(block('js', "import x from 'x'\nawait x()\n")), undefined, 'an ES module may await')
  t.match(syntaxError(block('js', "import x from 'x'\nconst = 1\n")), /expected/, 'an ES module with a syntax error')
  t.equal(syntaxError(block('js', 'await flush()\nlog.info(1)\n')), undefined, 'a snippet may await')
  t.match(syntaxError(block('js', 'log.info(\n')), /SyntaxError/)
  t.equal(syntaxError(block('ts', 'const a: number = 1\n')), undefined)
  t.match(syntaxError(block('ts', 'const a: = 1\n')), /expected/)
  t.same(blocks('x\n```js run\na()\n```\n\n```\nplain\n```\n').map((b) => [b.lang, b.attrs, b.code, b.line]),
    [['js', ['run'], 'a()\n', 2], ['', [], 'plain\n', 6]])
})

t.test('every JS and TS block of the README parses', async (t) => {
  t.ok(code.length >= 6, `${code.length} blocks found`)
  t.ok(code.some((b) => TS.has(b.lang)), 'TypeScript blocks among them')
  for (const block of code) {
    t.equal(syntaxError(block), undefined, `README.md:${block.line} (${block.lang}, ${kindOf(block)}) parses`)
  }
})

t.test('the README is for users: at most 350 lines, every code block runnable', async (t) => {
  const lines = readme.split('\n').length
  t.ok(lines <= 350, `${lines} lines`)
  for (const block of code) {
    t.ok(TS.has(block.lang) || block.attrs.includes('run') || block.attrs.includes('server'), `README.md:${block.line} is run (js run, js server or ts)`)
  }
})

/** A free loopback port, for a server block. */
async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  return port
}

/** Runs `fn` over `items`, at most `width` at once. */
async function inBatches<T> (items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) await fn(items[next++] as T)
  }))
}

/** Bounded polling: a server block listens when it is ready, with no event to tell this process. */
async function until (cond: () => boolean | Promise<boolean>, ms = 20000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await cond()) return true
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return false
}

async function listening (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

t.test('every block runs against the simulator, as written', async (t) => {
  const runnable = code
  t.ok(runnable.length >= 6, `${runnable.length} blocks`)
  // Under node_modules/.cache: ignored by git and linters; the package is
  // linked by name, and its parents' node_modules hold pino.
  const dir = join(root, 'node_modules', '.cache', `readme-${process.pid}`)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(join(dir, 'node_modules'), { recursive: true })
  symlinkSync(root, join(dir, 'node_modules', 'pino-bitrix24-workflow'), 'dir')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))

  const base: NodeJS.ProcessEnv = { ...process.env, BITRIX24_API_KEY: 'vibe_api_test_key' }
  // No proxy of the developer's; the test runner's NODE_OPTIONS go with untracked().
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy']) delete base[name]
  // The blocks run four at a time, each against a simulator of its own: what
  // reached a simulator is that block's alone, and the wall time is far below
  // the sum of them all (mostly process and worker start-up). A block whose
  // logger nothing referenced lost its line when the collector ran before
  // exit (see docs/delivery.md, 'Keep the logger referenced'): the examples
  // export their logger, and the message says how long a block ran.
  await inBatches(runnable, 4, async (block) => {
    const sim = await startSimulator()
    t.teardown(() => sim.close())
    const env: NodeJS.ProcessEnv = { ...base, BITRIX24_BASE_URL: sim.url }
    const where = `README.md:${block.line}`
    let took = 0
    const typescript = TS.has(block.lang)
    const file = join(dir, `readme-${block.line}.${kindOf(block) === 'module' && !typescript ? 'mjs' : 'cjs'}`)
    // Types stripped, as a compiler would: the CommonJS it emits for an app with esModuleInterop.
    writeFileSync(file, typescript
      ? ts.transpileModule(block.code, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText
      : block.code)
    if (block.attrs.includes('server')) {
      const port = await freePort()
      const child = spawn(...untracked(process.execPath, [file]), { cwd: dir, env: { ...env, PORT: String(port) } })
      let stderr = ''
      child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
      const exited = once(child, 'close')
      t.ok(await until(() => listening(port)), `${where} listens on PORT`)
      const token = `wf.readme.server.${block.line}`
      const res = await fetch(`http://127.0.0.1:${port}/activity/import`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `event_token=${token}&workflow_id=1&properties%5Bfile%5D=contacts.csv`
      })
      t.equal(res.status, 200, `${where} answers the activity request`)
      t.ok(await until(() => sim.event(token) !== undefined), `${where}: the activity is completed`)
      t.match(sim.entries(token).join('\n'), /INFO Import started file=contacts\.csv/, `${where}: its lines landed, with the nested property`)
      child.kill('SIGTERM')
      await exited
      t.equal(stderr, '', `${where} writes nothing to stderr`)
    } else {
      const started = Date.now()
      const result = await new Promise<{ code: number | null, stderr: string }>((resolve) => {
        const child = execFile(...untracked(process.execPath, [file]), { cwd: dir, env, timeout: 60000 }, (_err, _stdout, stderr) => {
          resolve({ code: child.exitCode, stderr })
        })
      })
      took = Date.now() - started
      t.equal(result.code, 0, `${where} exits 0`)
      t.equal(result.stderr, '', `${where} writes nothing to stderr`)
    }
    const answered = sim.requests
    // A block that logs to this simulator must reach it: "every request succeeded" alone passes for none.
    t.ok(answered.length > 0, `${where}: its lines reached the simulator${answered.length === 0 ? ` (the block ran ${took} ms)` : ''}`)
    t.ok(answered.every((r) => r.status === 200), `${where}: every request it sent to the simulator succeeded`)
  })
})
