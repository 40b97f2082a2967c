'use strict'

// Section "processes": N = 1, 2, 4 applications on one API key against a
// simulator limited as a portal is (2 requests/s, burst 5), each pacing itself
// (no redisUrl) or sharing one budget through Redis (redisUrl). The same work
// in every row (ENTRIES entries, one line for each token, split among the
// processes): the rows differ only in how the processes coordinate.

const { spawn, spawnSync } = require('node:child_process')
const net = require('node:net')
const os = require('node:os')
const { Server, runApp } = require('./children')

const LIMIT = { rps: 2, burst: 5 }

function freePort () {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** A throwaway redis-server on loopback, or null when none is installed. */
async function startRedis () {
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) return null
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { cwd: os.tmpdir(), stdio: ['ignore', 'pipe', 'ignore'] })
  await new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error('redis-server did not start')), 10000)
    child.stdout.on('data', (chunk) => {
      out += chunk
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)))
  })
  child.removeAllListeners('exit')
  const { Redis } = require('ioredis')
  const url = `redis://127.0.0.1:${port}`
  const admin = new Redis(url, { protocol: 2 })
  return {
    url,
    // An empty bucket for each run, as a fresh deployment would find it.
    flush: () => admin.flushall(),
    stop: () => {
      admin.disconnect()
      child.kill('SIGKILL')
    }
  }
}

/** N processes log their share of the entries at once; all finish when everything landed, or at the deadline. */
async function one (server, n, entries, redisUrl, verbose) {
  await server.call('reset')
  const each = Math.ceil(entries / n)
  const total = each * n
  // Sharing or not, the work cannot go faster than the portal: (total − burst) / rps, plus slack.
  const deadline = 2000 + (total - LIMIT.burst) / LIMIT.rps * 1000 + 60000
  const children = []
  let poll
  let told = false
  const finishAll = () => {
    clearInterval(poll)
    if (told) return
    told = true
    // A child that has already gone (failed) cannot be told: its error goes to the callback.
    for (const child of children) if (child.connected) child.send({ type: 'finish' }, () => {})
  }
  const onMessage = (msg, child) => {
    if (msg.type !== 'logged') return
    children.push(child)
    if (children.length < n) return
    const until = Date.now() + deadline
    poll = setInterval(async () => {
      const counts = await server.call('counts').catch(() => null)
      if (counts !== null && (counts.sim.lines >= total || Date.now() > until)) finishAll()
    }, 250)
  }
  const options = redisUrl === undefined ? {} : { redisUrl }
  const t0 = Date.now()
  let runs
  try {
    runs = await Promise.all(Array.from({ length: n }, (_, i) => runApp(
      { mode: 'rate', variant: 'bitrix24', urls: server.urls, options, count: each, tokenOffset: i * each },
      { timeoutMs: deadline + 60000, onMessage, verbose }
    )))
  } finally {
    finishAll()
  }
  const sim = (await server.call('counts')).sim
  return {
    n,
    total,
    sim,
    wallMs: (sim.lastOkAt ?? Date.now()) - t0,
    rateLimited: runs.reduce((sum, r) => sum + (r.stats === null ? 0 : r.stats.rateLimited), 0)
  }
}

async function processes ({ quick, verbose, log }) {
  const entries = quick ? 20 : 30
  const counts = [1, 2, 4]
  const redis = await startRedis()
  const server = await Server.start({ rateLimit: LIMIT })
  const rows = []
  try {
    for (const n of counts) {
      for (const shared of [false, true]) {
        const label = `${n} process${n === 1 ? '' : 'es'}, ${shared ? 'redisUrl (one shared budget)' : 'no redisUrl (each paces itself)'}`
        if (shared && redis === null) {
          rows.push({ label, error: 'redis-server is not installed' })
          continue
        }
        try {
          if (shared) await redis.flush()
          const row = await one(server, n, entries, shared ? redis.url : undefined, verbose)
          rows.push({ label, ...row })
        } catch (err) {
          rows.push({ label, error: err.message.split('\n')[0] })
        }
        log(`processes: ${label} done`)
      }
    }
  } finally {
    await server.close()
    if (redis !== null) redis.stop()
  }
  return { entries, rows }
}

function processesTable (result, { table, fmtInt, fmtNum, fmtPct }) {
  return table(
    ['processes on one key', 'entries (1 line × 1 token each)', '429s met (simulator)', 'delivered', 'requests', 'requests per entry', 'start → last entry'],
    result.rows.map((row) => row.error !== undefined
      ? [row.label, '—', '—', `failed: ${row.error}`, '—', '—', '—']
      : [
          row.label,
          fmtInt(row.total),
          fmtInt(row.sim.byCode.RATE_LIMITED ?? 0),
          fmtPct(row.sim.lines / row.total),
          fmtInt(row.sim.requests),
          fmtNum(row.sim.requests / row.total, 2),
          fmtNum(row.wallMs / 1000, 1) + ' s'
        ])
  )
}

module.exports = { processes, processesTable }
