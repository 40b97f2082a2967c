/**
 * Delay before retry number `attempt` (1-based): exponential with full jitter,
 * so that many clients failing together do not retry together. A delay the
 * server asked for is obeyed as given (capped), never jittered below it; a
 * delay of 0 (or a date in the past) is no delay at all, and retrying at once
 * against a server that keeps saying so would loop: backoff applies instead.
 */
export function backoff (attempt: number, base: number, cap: number, serverDelay: number | undefined, random: () => number = Math.random): number {
  if (serverDelay !== undefined && serverDelay > 0) return Math.min(cap, serverDelay)
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt - 1, 30))
  return Math.floor(random() * ceiling)
}
