import { rename } from 'node:fs/promises'
import { inRanges, type TokenRecord } from './spool-record'
import { describeError, type Lmdb, openStore, probeStore } from './spool-store'

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
      for (const { key, value } of store.tokens.getRange()) records.set(key as unknown as string, value as TokenRecord)
      for (const { key, value } of store.lines.getRange()) {
        const [token, epoch, first] = key as [string, number, number]
        const [time, texts, returnValues] = value as [number, string[], Record<string, unknown> | undefined]
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
