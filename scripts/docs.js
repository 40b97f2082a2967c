'use strict'

// `npm run docs`: writes the text generated from the option declarations
// (lib/option-table.ts) and from RULES into README.md and the TSDoc of
// Options. Runs on the build in dist/; test/option-docs.test.ts fails when
// either file is stale.

const { readFileSync, writeFileSync } = require('node:fs')
const { join } = require('node:path')
const { renderOptionsSource, renderReadme } = require('../dist/lib/option-docs')
const { RULES } = require('../dist/lib/classify')

const root = join(__dirname, '..')
for (const [file, render] of [
  ['README.md', (text) => renderReadme(text, RULES)],
  ['lib/option-types.ts', renderOptionsSource]
]) {
  const path = join(root, file)
  const before = readFileSync(path, 'utf8')
  const after = render(before)
  if (after !== before) {
    writeFileSync(path, after)
    console.log(`updated ${file}`)
  }
}
