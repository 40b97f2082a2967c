// `npx pino-bitrix24-workflow simulate [--port N]`: the Vibe API simulator as
// a command, for trying the transport without a portal. It runs in its own
// process on purpose: an app that logs through pino.transport() blocks its
// main thread in pino's exit handler until the worker has closed, so a
// simulator inside that app could not answer the last requests, and the
// completion of every activity would wait out closeTimeout.

import type { EventEmitter } from 'node:events'
import type { Writable } from 'node:stream'
import { PREFIX } from './prefix'
import { shortToken, oneLine } from './reporter'
import { type Landed, startSimulator, type Simulator } from './simulator'

export const SIMULATE_KEY = 'vibe_api_test_key'
export const DEFAULT_SIMULATE_PORT = 7024
/** Rows of one entry shown; the rest are counted. */
const ROWS_SHOWN = 20
/** Characters of one row shown. */
const ROW_LENGTH = 160

export interface SimulateIO {
  port: number
  host?: string
  stdout: Writable
  stderr: Writable
  /** Where SIGINT and SIGTERM arrive: `process` in the binary; without it, it runs until the process ends. */
  signals?: Pick<EventEmitter, 'once' | 'off'>
  /** Called once it listens, with the simulator (for tests). */
  started?: (sim: Simulator) => void
}

/** What the terminal shows of one landing: each row prefixed with its workflow, cleaned and cut. */
export function showLanded (landed: Landed): string {
  const who = shortToken(landed.eventToken).padEnd(14)
  if (landed.kind === 'completion') {
    const values = oneLine(JSON.stringify(landed.returnValues ?? {}), ROW_LENGTH)
    const last = landed.message === '' ? '' : showRows(who, landed.message)
    return last + `${who}| completed, returnValues ${values}\n`
  }
  if (landed.kind === 'ignored') return `${who}| (after the completion: accepted and thrown away, as Bitrix24 does)\n`
  return showRows(who, landed.message)
}

function showRows (who: string, message: string): string {
  const rows = message.split('\n')
  const shown = rows.slice(0, ROWS_SHOWN).map((row) => `${who}| ${oneLine(row, ROW_LENGTH)}\n`).join('')
  return rows.length > ROWS_SHOWN ? shown + `${who}| … ${rows.length - ROWS_SHOWN} more rows in this entry\n` : shown
}

/** Runs the simulator until SIGINT or SIGTERM; resolves to the exit code. */
export async function simulate (io: SimulateIO): Promise<number> {
  const host = io.host ?? '127.0.0.1'
  let sim: Simulator
  try {
    sim = await startSimulator({
      host,
      port: io.port,
      // The placeholders of the API's own examples work too, so a curl copied from its pages answers.
      apiKeys: [SIMULATE_KEY, 'YOUR_API_KEY'],
      appKeys: ['vibe_app_test_key', 'YOUR_APP_KEY'],
      sessionTokens: ['session_test_token', 'USER_SESSION_TOKEN'],
      // It may run for days: what it shows goes to the terminal, and only recent requests and workflows are kept.
      maxRecorded: 1000,
      maxWorkflows: 10_000,
      onLanded: (landed) => { io.stdout.write(showLanded(landed)) }
    })
  } catch (err) {
    io.stderr.write(`${PREFIX}ERR_BITRIX24_SIMULATOR: cannot listen on ${host}:${io.port} (${oneLine(String((err as Error).message), 60)}); choose another port with --port N\n`)
    return 1
  }
  io.stdout.write(
    `Vibe API simulator on ${sim.url} (Ctrl-C stops it). In the shell of your app:\n\n` +
    `  export BITRIX24_API_KEY=${SIMULATE_KEY}\n` +
    `  export BITRIX24_BASE_URL=${sim.url}\n\n` +
    'Each workflow\'s rows show here as they land:\n'
  )
  io.started?.(sim)
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      io.signals?.off('SIGINT', stop)
      io.signals?.off('SIGTERM', stop)
      resolve()
    }
    io.signals?.once('SIGINT', stop)
    io.signals?.once('SIGTERM', stop)
  })
  await sim.close()
  return 0
}
