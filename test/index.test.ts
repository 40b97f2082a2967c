import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import ts from 'typescript'
import pkg from '../index'
import { makeApp, runApp } from './fixtures/app'

// Every value the published types promise must be importable by name from an
// ES module at run time, not only type-check: Node finds the names of a
// CommonJS module by reading its source, so they are checked against the
// compiled package, in a child process, as an application would import it.

/** The value names of the package's published types (dist/index.d.ts). */
function typedNames (): string[] {
  const file = resolve(__dirname, '..', 'dist', 'index.d.ts')
  // Only the names are read: the ES2022 library, not the default one that adds the DOM's, and
  // not Node's types (the same names without them; parsing both was most of this file's time).
  // That the published types check, with Node's, is package.test.ts's.
  const program = ts.createProgram([file], { strict: true, esModuleInterop: true, noEmit: true, skipLibCheck: true, types: [], lib: ['lib.es2022.d.ts'] })
  const source = program.getSourceFile(file)
  const assignment = source?.statements.find((s): s is ts.ExportAssignment => ts.isExportAssignment(s) && s.isExportEquals === true)
  if (assignment === undefined) throw new Error('dist/index.d.ts has no `export =`')
  return program.getTypeChecker().getTypeAtLocation(assignment.expression).getProperties().map((p) => p.name)
}

t.test('every name the types export can be imported by name from ESM', async (t) => {
  const names = typedNames()
  t.ok(names.includes('build') && names.includes('parseOptions'), 'the names the README shows are among them')
  t.same([...names].sort(), Object.keys(pkg).sort(), 'the types and require() agree')
  const dir = makeApp(t)
  const named = names.filter((n) => n !== 'default')
  // A static import: a name Node cannot see fails at link time, before anything runs.
  writeFileSync(join(dir, 'named.mjs'), [
    `import factory, { ${named.join(', ')} } from 'pino-bitrix24-workflow'`,
    `const values = { default: factory, ${named.join(', ')} }`,
    'process.stdout.write(JSON.stringify(Object.fromEntries(Object.entries(values).map(([k, v]) => [k, typeof v]))))',
    ''
  ].join('\n'))
  const run = await runApp(dir, 'named.mjs', {})
  t.equal(run.code, 0, run.stderr)
  const expected = Object.fromEntries(names.map((n) => [n, typeof (pkg as unknown as Record<string, unknown>)[n]]))
  t.same(JSON.parse(run.stdout), expected, 'each name is the value require() gives')
})
