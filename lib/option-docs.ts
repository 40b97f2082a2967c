// Text about the options and the stop codes, generated from their one
// declaration (lib/option-table.ts, RULES of lib/classify.ts): the README's
// tables, the TSDoc of Options, and the parts of --help. `npm run docs`
// writes them; tests fail when what is written has drifted.

import type { Rule } from './classify'
import { kebab } from './kebab'
import { OPTION_NAMES, OPTIONS, type OptionName, type Row } from './option-table'

/** A default as docs show it: `'eventToken'`, `2000`, `[]`, or the row's own words. */
export function defaultText (row: Row<unknown>): string {
  if (row.defaultText !== undefined) return row.defaultText
  const value = row.default
  if (typeof value === 'string') return `'${value}'`
  return JSON.stringify(value)
}

/** The accepted range of a value, or '' when any value of its type goes. */
export function rangeText (row: Row<unknown>): string {
  if (row.kind === 'integer' || row.kind === 'number') return `${row.min} to ${row.max}`
  return ''
}

/** The TSDoc text of an option in Options. */
export function tsdoc (name: OptionName): string {
  const row: Row<unknown> = OPTIONS[name]
  const range = rangeText(row)
  return row.doc +
    ` Default: ${defaultText(row)}.` +
    (range === '' ? '' : ` Range: ${range}.`) +
    (row.env === undefined ? '' : ` Env: ${row.env}.`)
}

function cell (text: string): string {
  return text.replace(/\|/g, '\\|')
}

function code (text: string): string {
  return '`' + text + '`'
}

/** The README's options table. */
export function optionsTable (): string {
  const lines = [
    '| option | type | default | range | env | flag | meaning |',
    '|---|---|---|---|---|---|---|'
  ]
  for (const name of OPTION_NAMES) {
    const row: Row<unknown> = OPTIONS[name]
    const shown = row.defaultText === undefined ? code(defaultText(row)) : defaultText(row)
    const range = rangeText(row)
    lines.push('| ' + [
      code(name),
      cell(row.type),
      cell(shown),
      range,
      row.env === undefined ? '' : code(row.env),
      code(`--${kebab(name)}`),
      cell(row.doc)
    ].join(' | ') + ' |')
  }
  return lines.join('\n') + '\n'
}

/** The README's table of the codes that stop the key, with what to do. */
export function stopCodesTable (rules: Readonly<Record<string, Readonly<Rule>>>): string {
  const lines = ['| code | what to do |', '|---|---|']
  for (const [name, rule] of Object.entries(rules)) {
    if (rule.action === 'keyFailure') lines.push(`| ${code(name)} | ${cell(rule.advice)} |`)
  }
  return lines.join('\n') + '\n'
}

/** Replaces what stands between `<!-- name:start -->` and `<!-- name:end -->`. */
export function replaceBetween (text: string, name: string, content: string): string {
  const start = `<!-- ${name}:start -->\n`
  const end = `<!-- ${name}:end -->`
  const from = text.indexOf(start)
  const to = text.indexOf(end)
  if (from === -1 || to < from) throw new Error(`markers <!-- ${name}:start/end --> not found`)
  return text.slice(0, from + start.length) + content + text.slice(to)
}

/** The README with its generated tables brought up to date. */
export function renderReadme (readme: string, rules: Readonly<Record<string, Readonly<Rule>>>): string {
  return replaceBetween(replaceBetween(readme, 'options', optionsTable()), 'stop-codes', stopCodesTable(rules))
}

/** lib/option-types.ts with the TSDoc of every Options member brought up to date. */
export function renderOptionsSource (source: string): string {
  return source.replace(/^( {2})\/\*\*.*\*\/\n( {2})(\w+)\?:/gm, (match, indent: string, indent2: string, name: string) =>
    name in OPTIONS ? `${indent}/** ${tsdoc(name as OptionName)} */\n${indent2}${name}?:` : match)
}
