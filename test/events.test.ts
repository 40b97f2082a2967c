import t, { type Test } from 'tap'
import { EventEmitter, once } from 'node:events'
import { MessageChannel, isMainThread } from 'node:worker_threads'
import { createEmit, type DropEvent } from '../lib/events'
import { createStats } from '../lib/stats'

const DROP: DropEvent = { reason: 'overflow', lines: 1, token: 'wf.x', code: undefined }

function threadStreamData (): { dataBuf: SharedArrayBuffer, stateBuf: SharedArrayBuffer } {
  return { dataBuf: new SharedArrayBuffer(4), stateBuf: new SharedArrayBuffer(4) }
}

/** A message channel closed when the test ends. */
function channel (t: Test): MessageChannel {
  const ch = new MessageChannel()
  t.teardown(() => {
    ch.port1.close()
    ch.port2.close()
  })
  return ch
}

function collect (stream: EventEmitter, name: string): unknown[][] {
  const seen: unknown[][] = []
  stream.on(name, (...args: unknown[]) => seen.push(args))
  return seen
}

t.test('on the main thread, events are emitted on the stream', async (t) => {
  const stream = new EventEmitter()
  const seen = collect(stream, 'bitrix24:drop')
  const emit = createEmit(stream, undefined, true, null)
  const payload: DropEvent = { reason: 'overflow', lines: 3, token: 'wf.full.token.kept', code: undefined }
  emit('bitrix24:drop', payload)
  t.equal(seen.length, 0, 'not while delivery is still working')
  await new Promise((resolve) => process.nextTick(resolve))
  t.equal(seen.length, 1)
  t.equal(seen[0]?.[0], payload, 'the payload object itself, as the only argument')
  t.equal(seen[0]?.length, 1)
})

t.test('the defaults are this thread\'s own (the test runs on the main thread)', async (t) => {
  t.equal(isMainThread, true)
  const stream = new EventEmitter()
  const seen = collect(stream, 'bitrix24:stats')
  const stats = createStats()
  stats.received = 1
  createEmit(stream)('bitrix24:stats', stats)
  await new Promise((resolve) => process.nextTick(resolve))
  t.same(seen, [[stats]])
})

t.test('a listener that throws cannot break the code that emitted', async (t) => {
  const stream = new EventEmitter()
  stream.on('bitrix24:drop', () => { throw new Error('listener bug') })
  const emit = createEmit(stream, undefined, true, null)
  t.doesNotThrow(() => emit('bitrix24:drop', DROP))
  // The listener's error surfaces as the uncaught exception it is, on its own tick.
  const uncaught = await new Promise<Error>((resolve) => {
    const listeners = process.listeners('uncaughtException')
    process.removeAllListeners('uncaughtException')
    process.once('uncaughtException', (err) => {
      for (const l of listeners) process.on('uncaughtException', l)
      resolve(err)
    })
  })
  t.match(uncaught.message, 'listener bug')
})

t.test('in thread-stream\'s worker, events go to the main thread as EVENT messages', async (t) => {
  const { port1, port2 } = channel(t)
  const stream = new EventEmitter()
  const local = collect(stream, 'bitrix24:authError')
  const emit = createEmit(stream, threadStreamData(), false, port1)
  const received = once(port2, 'message')
  emit('bitrix24:authError', { code: 'INVALID_API_KEY', status: 401, advice: 'issue a new key' })
  const [message] = await received
  t.same(message, { code: 'EVENT', name: 'bitrix24:authError', args: [{ code: 'INVALID_API_KEY', status: 401, advice: 'issue a new key' }] })
  t.same(local, [], 'nothing is emitted on the stream itself')
})

t.test('several events arrive in order', async (t) => {
  const { port1, port2 } = channel(t)
  const emit = createEmit(new EventEmitter(), threadStreamData(), false, port1)
  const messages: unknown[] = []
  const done = new Promise<void>((resolve) => {
    port2.on('message', (m) => {
      messages.push(m)
      if (messages.length === 2) resolve()
    })
  })
  emit('bitrix24:completed', { token: 'a' })
  emit('bitrix24:completionFailed', { token: 'b', reason: 'shutdown', code: undefined, outcome: 'unknown' })
  await done
  t.same(messages, [
    { code: 'EVENT', name: 'bitrix24:completed', args: [{ token: 'a' }] },
    { code: 'EVENT', name: 'bitrix24:completionFailed', args: [{ token: 'b', reason: 'shutdown', code: undefined, outcome: 'unknown' }] }
  ])
})

t.test('a user\'s own worker thread is left alone', async (t) => {
  const cases: Array<[string, unknown]> = [
    ['no workerData', undefined],
    ['null workerData', null],
    ['workerData of another type', 'hello'],
    ['workerData without the buffers', { foo: 1 }],
    ['only dataBuf', { dataBuf: new SharedArrayBuffer(4) }],
    ['only stateBuf', { stateBuf: new SharedArrayBuffer(4) }],
    ['plain ArrayBuffers', { dataBuf: new ArrayBuffer(4), stateBuf: new ArrayBuffer(4) }]
  ]
  for (const [name, data] of cases) {
    const { port1, port2 } = channel(t)
    const posted: unknown[] = []
    port2.on('message', (m) => posted.push(m))
    const stream = new EventEmitter()
    const local = collect(stream, 'bitrix24:rateLimited')
    createEmit(stream, data, false, port1)('bitrix24:rateLimited', { code: 'RATE_LIMITED', retryAfter: 1000 })
    await new Promise((resolve) => process.nextTick(resolve))
    t.same(local, [[{ code: 'RATE_LIMITED', retryAfter: 1000 }]], `${name}: emitted on the stream`)
    // A round trip on the same channel: anything posted before it would arrive first.
    port1.postMessage('probe')
    await once(port2, 'message')
    t.same(posted, ['probe'], `${name}: nothing posted to the parent port`)
  }
})

t.test('without a parent port, events stay on the stream', async (t) => {
  const stream = new EventEmitter()
  const seen = collect(stream, 'bitrix24:drop')
  createEmit(stream, threadStreamData(), false, null)('bitrix24:drop', DROP)
  await new Promise((resolve) => process.nextTick(resolve))
  t.same(seen, [[DROP]])
})

t.test('on the main thread, thread-stream\'s buffers alone do not redirect', async (t) => {
  const { port1, port2 } = channel(t)
  const posted: unknown[] = []
  port2.on('message', (m) => posted.push(m))
  const stream = new EventEmitter()
  const seen = collect(stream, 'bitrix24:drop')
  createEmit(stream, threadStreamData(), true, port1)('bitrix24:drop', DROP)
  port1.postMessage('probe')
  await once(port2, 'message')
  t.same(seen, [[DROP]])
  t.same(posted, ['probe'])
})
