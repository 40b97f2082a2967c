#!/usr/bin/env node
// `node app.js | pino-bitrix24-workflow [options]`: the logic is in lib/cli.ts.
import { run } from '../lib/cli'

run({
  argv: process.argv.slice(2),
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signals: process
}).then((code) => { process.exitCode = code })
