import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { RULES } from '../lib/classify'
import {
  defaultText,
  optionsTable,
  rangeText,
  renderOptionsSource,
  renderReadme,
  replaceBetween,
  stopCodesTable,
  tsdoc
} from '../lib/option-docs'
import { OPTION_NAMES, OPTIONS, rowOf } from '../lib/option-table'

const root = join(__dirname, '..')
const STALE = 'stale: run `npm run docs`'

t.test('the README tables are the ones generated from the declarations', async (t) => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  t.equal(readme, renderReadme(readme, RULES), `README.md is ${STALE}`)
})

t.test('the TSDoc of Options is the one generated from the declarations', async (t) => {
  const source = readFileSync(join(root, 'lib', 'option-types.ts'), 'utf8')
  t.equal(source, renderOptionsSource(source), `lib/option-types.ts is ${STALE}`)
  // Every option has its comment there, not only those the pattern happened to find.
  for (const name of OPTION_NAMES) {
    t.ok(source.includes(`  /** ${tsdoc(name)} */\n  ${name}?:`), `${name} is documented`)
  }
})

t.test('a stale table or comment is detected', async (t) => {
  const readme = '# x\n<!-- options:start -->\nold\n<!-- options:end -->\n<!-- stop-codes:start -->\n<!-- stop-codes:end -->\n'
  const fresh = renderReadme(readme, RULES)
  t.not(fresh, readme)
  t.equal(renderReadme(fresh, RULES), fresh, 'rendering is idempotent')
  t.match(fresh, /\| `closeTimeout` \| ms \| `5000` \| 0 to 9000 \| {2}\| `--close-timeout` \|/)
  t.throws(() => replaceBetween('no markers', 'options', 'x'), /markers <!-- options:start\/end --> not found/)
  t.throws(() => replaceBetween('<!-- options:end -->\n<!-- options:start -->\n', 'options', 'x'), /not found/)

  const source = '  /** drifted words */\n  maxRetries?: number\n  /** not an option */\n  other?: string\n'
  t.equal(renderOptionsSource(source), `  /** ${tsdoc('maxRetries')} */\n  maxRetries?: number\n  /** not an option */\n  other?: string\n`)
})

t.test('defaults, ranges and docs as shown', async (t) => {
  t.equal(defaultText(rowOf('tokenKey')), '\'eventToken\'')
  t.equal(defaultText(rowOf('flushInterval')), '2000')
  t.equal(defaultText(rowOf('exclude')), '[]')
  t.equal(defaultText(rowOf('keepNonBmp')), 'false')
  t.equal(defaultText(rowOf('timeZone')), 'the process\'s local zone')
  t.equal(rangeText(rowOf('maxRequestsPerSecond')), '0 to 10000')
  t.equal(rangeText(rowOf('level')), '')
  t.equal(tsdoc('closeTimeout'), `${OPTIONS.closeTimeout.doc} Default: 5000. Range: 0 to 9000.`)
  t.equal(tsdoc('apiKey'), `${OPTIONS.apiKey.doc} Default: none; required. Env: BITRIX24_API_KEY.`)
  t.match(optionsTable(), /\| `onRateLimit` \| 'buffer' \\\| 'drop' \|/, 'pipes in cells are escaped')
})

t.test('the stop-codes table lists exactly the codes that stop the key', async (t) => {
  const table = stopCodesTable(RULES)
  const codes = Object.entries(RULES).filter(([, rule]) => rule.action === 'keyFailure').map(([code]) => code)
  t.ok(codes.length > 0)
  for (const code of codes) t.match(table, `| \`${code}\` | ${RULES[code]?.advice} |`)
  t.notMatch(table, 'BITRIX_ACCESS_DENIED')
  t.equal(table.split('\n').length, codes.length + 3)
})
