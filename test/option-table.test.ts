import t from 'tap'
import { OPTION_NAMES, OPTIONS, rowOf } from '../lib/option-table'
import { expectation, parseOptions } from '../lib/options'

t.test('every option of Config is declared once, in order', async (t) => {
  const config = parseOptions({ apiKey: 'k' }, {})
  t.same(OPTION_NAMES, Object.keys(config), 'parseOptions returns exactly the declared options, in table order')
  t.equal(OPTION_NAMES[0], 'apiKey')
})

t.test('the declarations are consistent', async (t) => {
  const envs = new Set<string>()
  for (const name of OPTION_NAMES) {
    const row = rowOf(name)
    t.ok(row.doc.endsWith('.'), `${name}: its doc is a sentence`)
    t.ok('default' in row !== (row.defaultText !== undefined), `${name}: either a default or words for it`)
    if (row.required === true) t.equal(row.default, undefined, `${name}: required, so no default`)
    if (row.kind === 'integer' || row.kind === 'number') {
      t.type(row.min, 'number', `${name}: min`)
      t.type(row.max, 'number', `${name}: max`)
      const value = row.default as number
      t.ok(value >= (row.min as number) && value <= (row.max as number), `${name}: its default is in range`)
    }
    if (row.kind !== 'boolean') t.type(row.value, 'string', `${name}: a placeholder for --help`)
    if (row.env !== undefined) {
      t.match(row.env, /^BITRIX24_[A-Z_]+$/, `${name}: env name`)
      t.notOk(envs.has(row.env), `${name}: env not shared`)
      envs.add(row.env)
    }
    t.type(expectation(row), 'string')
  }
  t.same(OPTIONS.onRateLimit.choices, ['buffer', 'drop'])
})

t.test('the declarations cannot be changed', async (t) => {
  t.ok(Object.isFrozen(OPTIONS))
  t.ok(Object.isFrozen(OPTIONS.onRateLimit.choices))
})
