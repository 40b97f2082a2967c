'use strict'

// A bench-only loopback ingest sink for the published peers. It speaks just
// enough of each peer's protocol to accept its requests and count the lines
// in them; it stores nothing. What the peers send (read from their sources
// in node_modules):
// - pino-loki 3: POST {host}/loki/api/v1/push, Content-Type application/json,
//   body { streams: [{ stream: {…labels}, values: [[ns, line, meta?], …] }] },
//   uncompressed, through global fetch; any 2xx is success (Loki answers 204).
// - @axiomhq/pino 2 (@axiomhq/js 2): POST {edgeUrl}/v1/ingest/{dataset}
//   (legacy: {url}/v1/datasets/{dataset}/ingest), Content-Type
//   application/x-ndjson, Content-Encoding gzip (CompressionStream), one
//   JSON event per line, batches of 1000 events or 1 s; the answer must be
//   JSON (an IngestStatus).

const http = require('node:http')
const zlib = require('node:zlib')

const LOKI_PATH = '/loki/api/v1/push'
const AXIOM_PATH = /^\/v1\/(?:ingest\/[^/]+|datasets\/[^/]+\/ingest)$/

function emptyCounts () {
  return {
    loki: { requests: 0, lines: 0, bytes: 0 },
    axiom: { requests: 0, lines: 0, bytes: 0 },
    rejected: 0
  }
}

function decode (req, body) {
  const encoding = String(req.headers['content-encoding'] || 'identity').toLowerCase()
  if (encoding === 'gzip') return zlib.gunzipSync(body)
  if (encoding === 'deflate') return zlib.inflateSync(body)
  if (encoding === 'identity') return body
  throw new Error(`unsupported content-encoding ${encoding}`)
}

function lokiLines (req, raw) {
  const type = String(req.headers['content-type'] || '')
  if (!type.startsWith('application/json')) {
    // Loki's protobuf+snappy push is not used by pino-loki; say so loudly if that changes.
    throw new Error(`unsupported loki content-type ${type}`)
  }
  const payload = JSON.parse(raw.toString('utf8'))
  let lines = 0
  for (const stream of payload.streams) lines += stream.values.length
  return lines
}

function ndjsonLines (req, raw) {
  const type = String(req.headers['content-type'] || '')
  const text = raw.toString('utf8')
  if (type.startsWith('application/json')) {
    const payload = JSON.parse(text)
    return Array.isArray(payload) ? payload.length : 1
  }
  let lines = 0
  let start = 0
  while (start < text.length) {
    let end = text.indexOf('\n', start)
    if (end === -1) end = text.length
    if (end > start) {
      JSON.parse(text.slice(start, end))
      lines++
    }
    start = end + 1
  }
  return lines
}

function startSink ({ host = '127.0.0.1', port = 0 } = {}) {
  let counts = emptyCounts()
  const server = http.createServer((req, res) => {
    const chunks = []
    req.on('data', (chunk) => chunks.push(chunk))
    req.on('end', () => {
      const path = String(req.url).split('?')[0]
      try {
        const raw = decode(req, Buffer.concat(chunks))
        if (req.method === 'POST' && path === LOKI_PATH) {
          const lines = lokiLines(req, raw)
          counts.loki.requests++
          counts.loki.lines += lines
          counts.loki.bytes += raw.length
          res.writeHead(204)
          res.end()
          return
        }
        if (req.method === 'POST' && AXIOM_PATH.test(path)) {
          const lines = ndjsonLines(req, raw)
          counts.axiom.requests++
          counts.axiom.lines += lines
          counts.axiom.bytes += raw.length
          const body = JSON.stringify({ ingested: lines, failed: 0, failures: [], processedBytes: raw.length, blocksCreated: 0, walLength: 0 })
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
          res.end(body)
          return
        }
        counts.rejected++
        res.writeHead(404, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ message: `bench sink: no route for ${req.method} ${path}` }))
      } catch (err) {
        counts.rejected++
        res.writeHead(400, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ message: `bench sink: ${err.message}` }))
      }
    })
  })
  server.keepAliveTimeout = 30000
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      const address = server.address()
      resolve({
        url: `http://${host}:${address.port}`,
        counts: () => JSON.parse(JSON.stringify(counts)),
        reset: () => { counts = emptyCounts() },
        close: () => new Promise((resolve) => {
          server.close(() => resolve())
          server.closeAllConnections()
        })
      })
    })
  })
}

module.exports = { startSink }
