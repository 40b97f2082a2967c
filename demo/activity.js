'use strict'

// An example Bitrix24 activity handler. When a workflow reaches a custom
// activity, Bitrix24 POSTs `event_token` (and the activity's properties) to
// the handler; the handler does its work, logs its progress with that token,
// and completes the activity with its return values, all through pino.

const pino = require('pino')

function createLogger (options = {}) {
  const transport = pino.transport({
    target: 'pino-bitrix24-workflow',
    options: {
      // apiKey and baseUrl default to env BITRIX24_API_KEY and BITRIX24_BASE_URL.
      ...options,
      // The default, 2000 ms, packs more lines into each entry: Bitrix24 keeps
      // only the newest 50 rows of a workflow and a portal drains 2 requests/s.
      // The demo shortens it so that it finishes quickly.
      flushInterval: 500
    }
  })
  return { logger: pino(transport), transport }
}

async function importContacts (logger, { eventToken, file }) {
  const log = logger.child({ eventToken })
  log.info({ file }, 'Import started')
  try {
    const rows = await parseCsv(file)
    log.info({ rows: rows.length }, 'Rows parsed')
    const skipped = rows.filter((row) => !row.email)
    if (skipped.length > 0) log.warn({ rows: skipped.length }, 'Skipped rows without e-mail')
    await saveContacts(file, rows.filter((row) => row.email))
    log.info({ workflowEvent: { returnValues: { status: 'ok', rows: rows.length } } }, 'Import finished')
  } catch (err) {
    log.error({ err, workflowEvent: { returnValues: { status: 'failed', error: err.message } } }, 'Import failed')
  }
}

// Stand-ins for real work, slow enough to look like it.
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function parseCsv (file) {
  await sleep(100)
  return Array.from({ length: 120 }, (_, i) => ({ name: `Contact ${i + 1}`, email: i % 40 === 7 ? '' : `c${i + 1}@example.com` }))
}

async function saveContacts (file, rows) {
  await sleep(150)
  if (file.includes('legacy')) throw new Error('CRM refused row 87: duplicate e-mail')
}

module.exports = { createLogger, importContacts }
