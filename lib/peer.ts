/**
 * Optional engines (ioredis for `redisUrl`) are optional peer dependencies:
 * an app that does not use them does not install them. Whether one is there is
 * asked before it is needed, so its absence is one coded message naming the
 * package rather than a bare MODULE_NOT_FOUND from deep inside delivery.
 */

/** Whether `name` can be loaded from here. */
export function installed (name: string, resolve: (name: string) => string = require.resolve): boolean {
  try {
    resolve(name)
    return true
  } catch {
    return false
  }
}
