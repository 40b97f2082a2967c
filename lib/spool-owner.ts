import { randomBytes } from 'node:crypto'
import { readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { connect, createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { threadId } from 'node:worker_threads'

// Who owns which spool in a shared directory. Each transport has an id; its
// spool is `<id>.mdb`, and spools it adopted are `<id>.<n>.mdb`. While it
// lives, it listens on the Unix socket `<id>.sock`: the kernel closes that
// socket the moment the process dies, however it dies (SIGKILL, OOM), so a
// refused connection means "owner gone" and an accepted one "owner alive".
// This was chosen over a pid file: pids are reused (in a container every
// restart is pid 1 again) and are meaningless across pid namespaces, while a
// socket on a shared volume answers for any process on the host. Node has no
// flock(2), and lmdb does not expose its own lock. Adoption is a rename(2) of
// the dead owner's file to the adopter's name: atomic, so of two processes
// that both find the owner gone exactly one gets the file.

export const SPOOL_SUFFIX = '.mdb'
const SOCKET_SUFFIX = '.sock'
// sun_path holds 108 bytes on Linux, 104 on macOS, with its terminating NUL.
export const MAX_SOCKET_PATH = 103
// A connect to a live owner answers at once; a hung one counts as alive (the safe side).
const PROBE_TIMEOUT = 2000

/** A fresh id: never one an earlier process had, even with the same pid. */
export function newId (): string {
  return `${process.pid}-${threadId}-${randomBytes(4).toString('hex')}`
}

/** The id that owns a spool file, or undefined for a file that is no spool. */
export function ownerOf (file: string): string | undefined {
  if (!file.endsWith(SPOOL_SUFFIX)) return undefined
  const id = file.slice(0, file.indexOf('.'))
  return /^\d+-\d+-[0-9a-f]{8}$/.test(id) ? id : undefined
}

export function socketPath (dir: string, id: string): string {
  return join(dir, id + SOCKET_SUFFIX)
}

/** Listens on the owner's socket; resolves once it is bound. The server never keeps the process alive. */
export function holdLock (dir: string, id: string): Promise<Server> {
  const path = socketPath(dir, id)
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    return Promise.reject(new Error(`the path of its lock socket is over ${MAX_SOCKET_PATH} bytes; use a shorter spoolDir`))
  }
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy())
    server.once('error', reject)
    server.listen(path, () => {
      server.unref()
      resolve(server)
    })
  })
}

/** Stops listening and removes the socket file. */
export function releaseLock (server: Server, dir: string, id: string): void {
  server.close()
  rmSync(socketPath(dir, id), { force: true })
}

/** Whether the owner of `id` still lives: its socket accepts a connection. */
export function ownerAlive (dir: string, id: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(socketPath(dir, id))
    const done = (alive: boolean): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(alive)
    }
    const timer = setTimeout(() => done(true), PROBE_TIMEOUT)
    socket.once('connect', () => done(true))
    socket.once('error', (err: NodeJS.ErrnoException) => {
      // Refused: a socket file nobody listens on. Missing: the owner never got to bind, or cleaned up.
      done(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT')
    })
  })
}

/** How much one start takes over: every file is read in a child process, and what it holds goes into memory. */
export interface AdoptLimits {
  files: number
  bytes: number
}

/** Spool files one start adopts at most; the rest wait for a later start. */
export const MAX_ADOPTED_FILES = 16

/**
 * Takes over the spools in `dir` whose owner is gone, oldest first, up to
 * `limits` (at least one file): each is renamed to `<id>.<n>.mdb` (a rename
 * another process won first is skipped) and its stale lock file removed; the
 * sockets of dead owners go. Returns the paths now owned by `id`, and how many
 * spools of dead owners were left for a later start.
 */
export async function adoptOrphans (dir: string, id: string, limits: AdoptLimits = { files: Infinity, bytes: Infinity }): Promise<{ adopted: string[], left: number }> {
  const adopted: string[] = []
  const alive = new Map<string, boolean>()
  const orphans: Array<{ file: string, size: number, time: number }> = []
  for (const file of readdirSync(dir)) {
    const owner = ownerOf(file)
    if (owner === undefined || owner === id) continue
    let known = alive.get(owner)
    if (known === undefined) {
      known = await ownerAlive(dir, owner)
      alive.set(owner, known)
    }
    if (known) continue
    // A file gone meanwhile (another adopter took it) counts as empty and new: its rename below fails.
    const stat = statSync(join(dir, file), { throwIfNoEntry: false })
    orphans.push({ file, size: stat?.size ?? 0, time: stat?.mtimeMs ?? Infinity })
  }
  // The oldest first: a crash loop must not starve the first crash's lines.
  orphans.sort((a, b) => a.time - b.time)
  let n = 0
  let bytes = 0
  let left = 0
  for (const { file, size } of orphans) {
    if (adopted.length > 0 && (adopted.length >= limits.files || bytes + size > limits.bytes)) {
      left++
      continue
    }
    const target = join(dir, `${id}.${++n}${SPOOL_SUFFIX}`)
    try {
      renameSync(join(dir, file), target)
    } catch {
      // Another process adopted it first.
      continue
    }
    rmSync(join(dir, file + '-lock'), { force: true })
    adopted.push(target)
    bytes += size
  }
  // A dead owner's socket answers nothing: gone, its files left behind are still found dead later.
  for (const [owner, isAlive] of alive) if (!isAlive) rmSync(socketPath(dir, owner), { force: true })
  return { adopted, left }
}
