import { rename } from 'node:fs/promises'
import { inRanges, type TokenRecord } from './spool-record'
import { describeError, type Lmdb, openStore, probeStore } from './spool-store'
import { MAX_TOKEN_LENGTH } from './token-length'

// What the spools of ended processes held, read back at start for replay.

/** What a spool left for one token, in order. */
export interface RecoveredToken {
  token: string
  lines: string[]
  completion: { text: string, returnValues: Record<string, unknown> } | undefined
  /** A request carrying its first lines was in flight when the owner died: they may have landed. */
  possiblyLanded: boolean
  /** The generic per-token state last stored with setState, if any. */
  state: unknown
}

/** What the spools of earlier processes held. */
export interface Recovered {
  tokens: RecoveredToken[]
  lines: number
  completions: number
  /** Per token, lines and the completion older than spoolMaxAge, not replayed. */
  expired: Array<{ token: string, lines: number, completion: boolean }>
  /** Spool files read. */
  files: number
}

// A file left by an ended process may be damaged or crafted: what is read back
// is queued as if the router had taken it, so it must be what the router takes.
// A record that is not makes the whole file unreadable (moved aside, not replayed).
const MALFORMED = 'a malformed record'

function checkedToken (key: unknown): string {
  if (typeof key !== 'string' || key === '' || key.length > MAX_TOKEN_LENGTH) throw new Error(MALFORMED)
  return key
}

/** A record of lines (or of a completion), checked. */
function lineRecord (key: unknown, value: unknown): { token: string, epoch: number, first: number, time: number, texts: string[], returnValues: Record<string, unknown> | undefined } {
  const [tok, epoch, first] = Array.isArray(key) ? key as unknown[] : []
  const [time, texts, returnValues] = Array.isArray(value) ? value as unknown[] : []
  if (!Number.isSafeInteger(epoch) || !Number.isSafeInteger(first) || typeof time !== 'number' || !Number.isFinite(time) ||
    !Array.isArray(texts) || !texts.every((text) => typeof text === 'string') ||
    (returnValues !== undefined && (returnValues === null || typeof returnValues !== 'object' || Array.isArray(returnValues)))) throw new Error(MALFORMED)
  return { token: checkedToken(tok), epoch: epoch as number, first: first as number, time, texts: texts as string[], returnValues: returnValues as Record<string, unknown> | undefined }
}

/**
 * Reads what earlier spools left, in key order (per token, oldest first), and
 * closes them; a file that cannot be read is moved aside as `<file>.corrupt`
 * with one stderr line. Lines older than spoolMaxAge are counted, not kept.
 */
export async function readSpools (lmdb: Lmdb, paths: string[], maxAge: number, now: number, warn: (text: string) => void): Promise<{ recovered: Recovered, readable: string[] }> {
  const byToken = new Map<string, RecoveredToken>()
  const recovered: Recovered = { tokens: [], lines: 0, completions: 0, expired: [], files: 0 }
  const readable: string[] = []
  const expired = new Map<string, Recovered['expired'][number]>()
  for (const path of paths) {
    let store
    try {
      const fault = await probeStore(path)
      if (fault !== undefined) throw new Error(`reading it crashed a test process: ${fault}`)
      store = openStore(lmdb, path)
      const records = new Map<string, TokenRecord>()
      for (const { key, value } of store.tokens.getRange()) records.set(checkedToken(key), value as TokenRecord)
      // All checked before any is taken: a file is replayed whole or not at all.
      const lines = Array.from(store.lines.getRange(), ({ key, value }) => lineRecord(key, value))
      for (const { token, epoch, first, time, texts, returnValues } of lines) {
        const record = records.get(token)
        let rec = byToken.get(token)
        if (rec === undefined) {
          rec = { token, lines: [], completion: undefined, possiblyLanded: false, state: record?.x }
          byToken.set(token, rec)
        }
        // The record speaks of its epoch only; lines of an older one are all replayed (at least once).
        const current = record?.e === epoch
        let live = 0
        for (let i = 0; i < texts.length; i++) {
          const seq = first + i
          if (current && inRanges((record as TokenRecord).d, seq)) continue
          live++
          if (current && seq <= ((record as TokenRecord).s as number)) rec.possiblyLanded = true
          if (now - time > maxAge) continue
          if (returnValues === undefined) {
            rec.lines.push(texts[i] as string)
            recovered.lines++
          } else {
            rec.completion = { text: texts[i] as string, returnValues }
            recovered.completions++
          }
        }
        if (live > 0 && now - time > maxAge) {
          let gone = expired.get(token)
          if (gone === undefined) expired.set(token, gone = { token, lines: 0, completion: false })
          if (returnValues === undefined) gone.lines += live
          else gone.completion = true
        }
      }
      for (const [token, record] of records) {
        if (!byToken.has(token) && record.x !== undefined) byToken.set(token, { token, lines: [], completion: undefined, possiblyLanded: false, state: record.x })
      }
      recovered.files++
      readable.push(path)
    } catch (err) {
      const aside = path + '.corrupt'
      // Out of the way of the next start, before the new spool starts; if even that fails, the
      // next start tries again.
      await rename(path, aside).catch(() => {})
      warn(`the spool file ${path} could not be read (${describeError(err)}); it was moved aside as ${aside} and is not replayed`)
    } finally {
      await store?.root.close().catch(() => {})
    }
  }
  recovered.tokens = [...byToken.values()]
  recovered.expired = [...expired.values()]
  return { recovered, readable }
}
