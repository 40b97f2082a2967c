'use strict'

// The child processes of a bench: the servers (bench/server.js) and one run
// of the measured application (bench/app.js).

const { fork } = require('node:child_process')
const path = require('node:path')

const APP = path.join(__dirname, '..', 'app.js')
const SERVER = path.join(__dirname, '..', 'server.js')

class Server {
  static start (opts = {}) {
    const child = fork(SERVER, [JSON.stringify(opts)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] })
    const server = new Server(child)
    return new Promise((resolve, reject) => {
      const onExit = (code) => reject(new Error(`bench server exited with ${code} before it was ready`))
      child.once('exit', onExit)
      child.once('message', (msg) => {
        child.off('exit', onExit)
        server.urls = { sim: msg.simUrl, sink: msg.sinkUrl }
        resolve(server)
      })
    })
  }

  constructor (child) {
    this.child = child
    this.nextId = 1
    this.waiting = new Map()
    child.on('message', (msg) => {
      const w = this.waiting.get(msg.id)
      if (w === undefined) return
      this.waiting.delete(msg.id)
      if (msg.error !== undefined) w.reject(new Error(msg.error))
      else w.resolve(msg.result)
    })
    child.on('exit', () => {
      for (const w of this.waiting.values()) w.reject(new Error('bench server exited'))
      this.waiting.clear()
    })
  }

  call (cmd, arg) {
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject })
      this.child.send({ id, cmd, arg })
    })
  }

  async close () {
    try {
      await this.call('close')
    } catch {}
    this.child.kill()
  }
}

/**
 * One run of bench/app.js (or of `script`). Resolves with its result; rejects (with the tail of
 * its stderr) if it fails, exits without a result or outlives timeoutMs.
 */
function runApp (scenario, { timeoutMs = 60000, onMessage, verbose = false, execArgv = [], script = APP } = {}) {
  const child = fork(script, [JSON.stringify(scenario)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv })
  let stderr = ''
  const keep = (chunk) => {
    if (verbose) process.stderr.write(chunk)
    stderr = (stderr + chunk).slice(-4000)
  }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  return new Promise((resolve, reject) => {
    let settled = false
    const done = (err, result) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (err) {
        err.stderr = stderr
        reject(err)
      } else {
        result.stderr = stderr
        resolve(result)
      }
    }
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      done(new Error(`${scenario.mode}/${scenario.variant}: no result within ${timeoutMs} ms`))
    }, timeoutMs)
    child.on('message', (msg) => {
      if (msg.type === 'result') done(null, msg.result)
      else if (msg.type === 'error') done(new Error(`${scenario.mode}/${scenario.variant}: ${msg.error}`))
      else if (onMessage) onMessage(msg, child)
    })
    child.on('exit', (code, signal) => {
      // Let a result that was sent just before exit arrive first.
      setTimeout(() => done(new Error(`${scenario.mode}/${scenario.variant}: exited (${signal ?? code}) without a result`)), 100)
    })
  })
}

module.exports = { Server, runApp }
