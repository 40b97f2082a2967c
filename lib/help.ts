import { type Flag, OPTION_FLAGS, PIPE_FLAGS } from './cli-args'

// The text of --help: every flag with its description, range, env variable and
// default, all read off the option table through the flags.

const WIDTH = 80

function wrap (text: string, indent: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line !== '' && indent + line.length + 1 + word.length > WIDTH) {
      lines.push(line)
      line = word
    } else {
      line = line === '' ? word : line + ' ' + word
    }
  }
  lines.push(line)
  return lines
}

function left (flag: Flag): string {
  return flag.type === 'boolean' ? `--[no-]${flag.name}` : `--${flag.name} <${flag.value}>`
}

function entries (flags: readonly Flag[], column: number): string {
  let text = ''
  for (const flag of flags) {
    const env = flag.env === undefined ? [] : [`Env: ${flag.env}`]
    const range = flag.range === '' ? [] : [`Range: ${flag.range}`]
    const lines = [...wrap(flag.description, column), ...range, ...env, `Default: ${flag.default}`]
    text += ('  ' + left(flag)).padEnd(column) + lines.join('\n' + ' '.repeat(column)) + '\n'
  }
  return text
}

/** The text of --help. */
export function usage (): string {
  const column = Math.max(...[...OPTION_FLAGS, ...PIPE_FLAGS].map((flag) => left(flag).length)) + 4
  return 'Usage: node app.js | pino-bitrix24-workflow [options]\n' +
    '       pino-bitrix24-workflow simulate [--port N]\n' +
    '\n' +
    'Reads pino NDJSON log lines from stdin and mirrors every line that carries an\n' +
    'event token into that Bitrix24 workflow\'s log (Vibe API). Lines without a\n' +
    'token, and lines that are not JSON objects, are skipped.\n' +
    '\n' +
    'Options:\n' +
    entries(OPTION_FLAGS, column) +
    '\n' +
    'Pipe:\n' +
    entries(PIPE_FLAGS, column) +
    '  -h, --help'.padEnd(column) + 'Print this help and exit.\n' +
    '  -v, --version'.padEnd(column) + 'Print the version and exit.\n' +
    '\n' +
    'Values go as --flag value or --flag=value; lists are comma-separated and a\n' +
    'repeated list flag adds to the list; booleans take --flag, --no-flag or\n' +
    '--flag=true|false.\n' +
    '\n' +
    'Exit status: 0 once stdin ends, or on SIGINT/SIGTERM, after delivering what is\n' +
    'queued for at most --close-timeout ms (lines given up on are summed up on\n' +
    'stderr); 1 for invalid flags or options.\n'
}
