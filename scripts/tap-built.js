'use strict'
// Exits 0 when tap's Test class is built for the plugin list in package.json
// ("tap"."plugin"), 1 when not: `npm test` then runs `tap build`, beside the
// build of dist/ and before the tests' type check, which reads tap's types.
// Left to itself, tap rebuilds inside the run, after its runner has loaded the
// default class, and that run's test processes still get every default
// plugin's loader (ts-node among them): about 40 s more on a 2-core machine,
// at the first run after each `npm ci`.
const { dirname } = require('node:path')

const run = dirname(require.resolve('@tapjs/run/package.json'))
const { TapConfig } = require(require.resolve('@tapjs/config', { paths: [run] }))
const { signature } = require('@tapjs/test')

TapConfig.load().then((config) => {
  process.exitCode = config.pluginSignature === signature ? 0 : 1
}, () => {
  process.exitCode = 1
})
