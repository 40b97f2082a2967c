import t from 'tap'
import { OPTION_FLAGS } from '../lib/cli-args'
import { usage } from '../lib/help'

t.test('usage lists every flag with its default and environment variable', async tt => {
  const text = usage()
  tt.match(text, /^Usage: node app\.js \| pino-bitrix24-workflow \[options\]\n/)
  for (const flag of OPTION_FLAGS) {
    const shown = flag.type === 'boolean' ? `--[no-]${flag.name}` : `--${flag.name} <${flag.value}>`
    const at = text.indexOf(`  ${shown} `)
    tt.ok(at >= 0, `lists ${shown}`)
    // The entry runs until the next line that starts a flag.
    const rest = text.slice(at + 2)
    const entry = rest.slice(0, rest.search(/\n {2}-/))
    tt.match(entry, `Default: ${flag.default}`, `default of --${flag.name}`)
    if (flag.env !== undefined) tt.match(entry, `\n${' '.repeat(33)}Env: ${flag.env}\n`, `env of --${flag.name}`)
  }
  for (const name of ['--[no-]tee', '-h, --help', '-v, --version']) tt.match(text, `  ${name} `)
  tt.match(text, 'Default: true')
  tt.match(text, /--no-tee/)
  tt.match(text, /Exit status: 0/)
  for (const line of text.split('\n')) tt.ok(line.length <= 80, `fits 80 columns: ${line}`)
  tt.ok(text.endsWith('\n'))
})

t.test('usage shows ranges from the declarations', async tt => {
  const text = usage()
  tt.match(text, /--close-timeout <ms>[^\n]*\n(?: +[^\n]*\n)*? +Range: 0 to 9000\n/)
  tt.match(text, /--custom-levels <label:n,…>/)
  tt.match(text, /--message-key <field>/)
  tt.match(text, /--error-key <field>/)
  tt.match(text, /Env: BITRIX24_TIME_ZONE/)
})
