// The README's code blocks are examples users paste, so they are checked as
// code. Every js/ts block is at least parsed: a block that requires is
// compiled as a CommonJS module (so a top-level await fails, as it would in
// Node), one that imports or exports as an ES module, any other as the body
// of an async function (a snippet from inside a handler). TypeScript blocks
// get the compiler's syntax diagnostics. A block whose info string says
// `run` (```js run) is also run, as a file of its own in a child process,
// with the built package resolvable by name and BITRIX24_API_KEY and
// BITRIX24_BASE_URL pointing at a simulator: it must exit 0 with nothing on
// stderr (the transport reports every problem there). New blocks are picked
// up by themselves.

import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import vm from 'node:vm'
import ts from 'typescript'
import { startSimulator } from '../lib/simulator'

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
  t.ok(code.length >= 10, `${code.length} blocks found`)
  t.ok(code.some((b) => TS.has(b.lang)), 'TypeScript blocks among them')
  for (const block of code) {
    t.equal(syntaxError(block), undefined, `README.md:${block.line} (${block.lang}, ${kindOf(block)}) parses`)
  }
})

t.test('the runnable blocks run against the simulator', async (t) => {
  const runnable = code.filter((b) => b.attrs.includes('run'))
  t.ok(runnable.length >= 4, `${runnable.length} runnable blocks`)
  const sim = await startSimulator()
  t.teardown(() => sim.close())
  // Under node_modules/.cache: ignored by git and linters; the package is
  // linked by name, and its parents' node_modules hold pino.
  const dir = join(root, 'node_modules', '.cache', `readme-${process.pid}`)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(join(dir, 'node_modules'), { recursive: true })
  symlinkSync(root, join(dir, 'node_modules', 'pino-bitrix24-workflow'), 'dir')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))

  const env: NodeJS.ProcessEnv = { ...process.env, BITRIX24_API_KEY: 'vibe_api_test_key', BITRIX24_BASE_URL: sim.url }
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy', 'NODE_OPTIONS']) delete env[name]
  for (const block of runnable) {
    const file = join(dir, `readme-${block.line}.${kindOf(block) === 'module' ? 'mjs' : 'cjs'}`)
    writeFileSync(file, block.code)
    const before = sim.requests.length
    const result = await new Promise<{ code: number | null, stderr: string }>((resolve) => {
      const child = execFile(process.execPath, [file], { cwd: dir, env, timeout: 60000 }, (_err, _stdout, stderr) => {
        resolve({ code: child.exitCode, stderr })
      })
    })
    t.equal(result.code, 0, `README.md:${block.line} exits 0`)
    t.equal(result.stderr, '', `README.md:${block.line} writes nothing to stderr`)
    const answered = sim.requests.slice(before)
    // A block that logs to this simulator must reach it: "every request succeeded" alone passes for none.
    if (!block.code.includes('startSimulator')) t.ok(answered.length > 0, `README.md:${block.line}: its lines reached the simulator`)
    t.ok(answered.every((r) => r.status === 200), `README.md:${block.line}: every request it sent to the simulator succeeded`)
  }
})
