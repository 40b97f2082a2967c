// Facts about the shape of lib/ that a reader relies on, checked on every run:
// no import cycles (type-only imports count: they tie the files together for a
// reader all the same), no class over 250 lines, no file over 400 lines.

import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'

const LIB = join(__dirname, '..', 'lib')
const MAX_FILE_LINES = 400
const MAX_CLASS_LINES = 250

interface Source {
  name: string
  lines: number
  imports: string[]
  classes: Array<{ name: string, lines: number }>
}

function lines (file: ts.SourceFile, node: ts.Node): number {
  const first = file.getLineAndCharacterOfPosition(node.getStart(file)).line
  const last = file.getLineAndCharacterOfPosition(node.getEnd()).line
  return last - first + 1
}

function read (name: string): Source {
  const text = readFileSync(join(LIB, name), 'utf8')
  const file = ts.createSourceFile(name, text, ts.ScriptTarget.ES2022, true)
  const imports: string[] = []
  const classes: Source['classes'] = []
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      imports.push(node.moduleSpecifier.text)
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] !== undefined && ts.isStringLiteral(node.arguments[0])) {
      imports.push(node.arguments[0].text)
    } else if (ts.isClassDeclaration(node) || ts.isClassExpression(node)) {
      classes.push({ name: node.name?.text ?? '(anonymous)', lines: lines(file, node) })
    }
    ts.forEachChild(node, visit)
  }
  visit(file)
  const local = imports.filter((spec) => spec.startsWith('./')).map((spec) => `${spec.slice(2)}.ts`)
  return { name, lines: text.split('\n').length - (text.endsWith('\n') ? 1 : 0), imports: local, classes }
}

/** Every cycle of the graph, each once, as the files around it starting from the smallest name. */
function cycles (graph: Map<string, string[]>): string[][] {
  const found = new Map<string, string[]>()
  const path: string[] = []
  const visiting = new Set<string>()
  const done = new Set<string>()
  const walk = (node: string): void => {
    if (done.has(node)) return
    if (visiting.has(node)) {
      const loop = path.slice(path.indexOf(node))
      const at = loop.indexOf([...loop].sort()[0] as string)
      const canonical = [...loop.slice(at), ...loop.slice(0, at)]
      found.set(canonical.join(' → '), canonical)
      return
    }
    visiting.add(node)
    path.push(node)
    for (const next of graph.get(node) ?? []) walk(next)
    path.pop()
    visiting.delete(node)
    // A node is finished only once every path through it was walked from the top: cycles
    // through it reached from another start are still found (the graph is small).
  }
  for (const node of [...graph.keys()].sort()) {
    walk(node)
    done.add(node)
  }
  return [...found.values()]
}

const sources = readdirSync(LIB).filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts')).sort().map(read)

t.test('the cycle finder itself', async (t) => {
  t.same(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', []]])), [])
  t.same(cycles(new Map([['b', ['c']], ['c', ['a']], ['a', ['b']]])), [['a', 'b', 'c']])
  t.same(cycles(new Map([['a', ['a']]])), [['a']])
  t.same(cycles(new Map([['a', ['b', 'c']], ['b', ['a']], ['c', ['a']]])).map((c) => c.join(' ')).sort(), ['a b', 'a c'])
})

t.test('no import cycles in lib/', async (t) => {
  t.ok(sources.length > 20, `${sources.length} files`)
  const graph = new Map(sources.map((s) => [s.name, s.imports]))
  t.ok(graph.get('delivery.ts')?.includes('scheduler.ts'), 'the imports are read')
  t.same(cycles(graph).map((c) => [...c, c[0]].join(' → ')), [])
})

t.test(`no file in lib/ over ${MAX_FILE_LINES} lines`, async (t) => {
  for (const s of sources) {
    t.ok(s.lines <= MAX_FILE_LINES, `lib/${s.name}: ${s.lines} lines`)
  }
})

t.test(`no class in lib/ over ${MAX_CLASS_LINES} lines`, async (t) => {
  const all = sources.flatMap((s) => s.classes.map((c) => ({ ...c, key: `${s.name}:${c.name}` })))
  t.ok(all.some((c) => c.key === 'scheduler.ts:Scheduler'), 'the classes are read')
  for (const c of all) {
    t.ok(c.lines <= MAX_CLASS_LINES, `class ${c.name} in lib/${c.key.split(':')[0] as string}: ${c.lines} lines`)
  }
})
