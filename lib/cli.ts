// The pipe mode: `node app.js | pino-bitrix24-workflow [options]`. The
// transport runs in this process, fed from stdin line by line; bin/cli.ts only
// hands it the real process streams, so everything here runs in tests too.

import type { EventEmitter } from 'node:events'
import type { Readable, Writable } from 'node:stream'
import { version } from './version'
import { type Command, explain, parseArgs, simulateUsage } from './cli-args'
import { usage } from './help'
import { simulate } from './simulate'
import type { Simulator } from './simulator'
import { configuredSecrets } from './options'
import { createTransport, type Internals, type TransportStream } from './transport'
import { LineSplitter, MAX_LINE_LENGTH } from './line-splitter'
import { PREFIX } from './prefix'

export interface RunIO {
  /** The arguments after node and the script. */
  argv: readonly string[]
  stdin: Readable
  stdout: Writable
  stderr: Writable
  /** Read for BITRIX24_API_KEY and the other variables. Default: process.env. */
  env?: NodeJS.ProcessEnv
  /** Where SIGINT and SIGTERM arrive: `process` in the binary. */
  signals?: Pick<EventEmitter, 'on' | 'off' | 'once'>
  /** `simulate`: called once the simulator listens (for tests). */
  started?: (sim: Simulator) => void
  /** Replaceable parts of the transport (clock, network), for tests. */
  internals?: Pick<Internals, 'clock' | 'sender'>
}

export { MAX_LINE_LENGTH } from './line-splitter'
const SIGNALS = ['SIGINT', 'SIGTERM'] as const

/**
 * Runs the command to completion and returns its exit code: 0 after --help,
 * --version, or once stdin has ended (or a signal arrived) and the transport
 * has closed; 1 for invalid flags or options, with the reason on stderr.
 */
export async function run (io: RunIO): Promise<number> {
  const { stdin, stdout, stderr } = io
  // Set once the options are known: quiet writes nothing but what ends the command.
  let quiet = false
  const notice = (text: string): void => {
    if (!quiet) stderr.write(PREFIX + text + '\n')
  }
  const warn = (err: Error): void => notice(err.message)
  // Whoever reads stdout may go away (`| head`): EPIPE is expected and only
  // ends the copy; delivery goes on either way.
  let stopCopy = (): void => {}
  stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') warn(err)
    stopCopy()
  })

  const env = io.env ?? process.env
  let command: Command
  try {
    command = parseArgs(io.argv, configuredSecrets({}, env))
  } catch (err) {
    stderr.write(explain(err as Error))
    return 1
  }
  if (command.command === 'help') {
    stdout.write(usage())
    return 0
  }
  if (command.command === 'version') {
    stdout.write(version + '\n')
    return 0
  }
  if (command.command === 'simulate-help') {
    stdout.write(simulateUsage())
    return 0
  }
  if (command.command === 'simulate') {
    return await simulate({ port: command.port, stdout, stderr, signals: io.signals, started: io.started })
  }
  const { options, tee, pino } = command
  let transport: TransportStream
  try {
    // parseOptions inside checks every value, with the library's own messages.
    transport = await createTransport(options, {
      ...io.internals,
      pino,
      env,
      stderr: (text) => { stderr.write(text) }
    })
  } catch (err) {
    stderr.write(explain(err as Error))
    return 1
  }
  // Valid, or the transport would have thrown: as the transport resolved it.
  quiet = transport.quiet

  if ((stdin as { isTTY?: boolean }).isTTY === true) {
    notice('reading log lines from the terminal; pipe an app into it: node app.js | pino-bitrix24-workflow')
  }

  // Split here once: the transport takes each line as it is, and counts (and
  // raises the drop event for) each one too long to hold.
  const lines = new LineSplitter(MAX_LINE_LENGTH, (line) => transport.line(line), () => transport.lineTooLong())
  const stop = (): void => {
    stdin.unpipe()
    stdin.destroy()
    // After stdin has ended by itself, the lines are already on their way out.
    if (!lines.writableEnded) lines.end()
  }

  stopCopy = () => {
    stdin.unpipe(stdout)
    // A write to a failed stdout returns false, which pauses stdin for a
    // 'drain' that never comes, and unpiping does not undo that pause.
    stdin.resume()
  }

  return await new Promise<number>((resolve) => {
    const onSignal = (): void => stop()
    for (const signal of SIGNALS) io.signals?.on(signal, onSignal)
    transport.on('error', warn)
    // The transport closes once it has delivered everything or given up at
    // closeTimeout; it has then written its own summary to stderr.
    transport.once('close', () => {
      for (const signal of SIGNALS) io.signals?.off(signal, onSignal)
      resolve(0)
    })
    // A stdin that fails ends the input like its end would.
    stdin.on('error', (err) => {
      warn(err)
      stop()
    })
    // Every line is in: the transport closes once it has delivered them.
    lines.once('finish', () => transport.end())
    if (tee) stdin.pipe(stdout, { end: false })
    stdin.pipe(lines)
  })
}
