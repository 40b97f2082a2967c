import type { Delivery } from './delivery'
import type { Drops } from './drops'
import type { Emit } from './events'
import type { Reporter } from './reporter'
import type { Recovered } from './spool-read'
import { count, type Stats } from './stats'

/**
 * Queues what earlier processes' spools held, before any new line is read:
 * each token's lines in their order, then its completion, so they go before
 * the token's new lines and the completion still goes last. A token whose
 * request was in flight at the crash may get its first lines written twice:
 * counted as a possible duplicate, like a retry of a request that may have
 * landed. A token's rows used (maxRows) are restored first, so that its budget goes on. Lines past spoolMaxAge are dropped as `expired`. One stderr line
 * and the `bitrix24:replayed` event carry the figures.
 */
export function replay (recovered: Recovered | undefined, delivery: Delivery, drops: Drops, stats: Stats, reporter: Reporter, emit: Emit): void {
  // No spool, or nothing left by ended processes.
  if (recovered === undefined) return
  let possibleDuplicates = 0
  for (const token of recovered.tokens) if (token.possiblyLanded) possibleDuplicates++
  let expired = 0
  for (const gone of recovered.expired) expired += gone.lines + (gone.completion ? 1 : 0)
  const tokens = recovered.tokens.filter((t) => t.lines.length > 0 || t.completion !== undefined).length
  // The figures first: the lines about single workflows (an expired completion) follow it. A spool
  // that held only the rows workflows used (a clean shutdown leaves those) is not worth a line at every start.
  if (recovered.lines + recovered.completions + expired > 0) {
    reporter.always(`replaying from ${count(recovered.files, 'spool', 'spools')} of ended processes: ${count(recovered.lines, 'line', 'lines')} and ${count(recovered.completions, 'completion', 'completions')} of ${count(tokens, 'workflow', 'workflows')}` +
    `; ${possibleDuplicates} possibly duplicated (in flight at the end); ${expired} older than spoolMaxAge dropped`)
  }
  for (const token of recovered.tokens) {
    // Before its lines are queued: the queue takes the rows the workflow already used.
    if (token.state !== undefined) delivery.restoreRows(token.token, token.state)
    for (const text of token.lines) delivery.add(token.token, text)
    if (token.completion !== undefined) delivery.complete(token.token, token.completion.text, token.completion.returnValues)
  }
  for (const gone of recovered.expired) {
    drops.lines('expired', gone.lines + (gone.completion ? 1 : 0), gone.token)
    if (gone.completion) drops.completionFailed(gone.token, 'expired', undefined)
  }
  stats.replayed += recovered.lines + recovered.completions
  stats.possibleDuplicates += possibleDuplicates
  emit('bitrix24:replayed', { lines: recovered.lines, completions: recovered.completions, tokens, possibleDuplicates, expired, spools: recovered.files })
}
