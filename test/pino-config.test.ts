import t from 'tap'
import { EventEmitter } from 'node:events'
import { HeldLines, onPinoConfig } from '../lib/pino-config'

t.test('onPinoConfig: once, for pino\'s message only', async (t) => {
  const port = new EventEmitter()
  const got: unknown[] = []
  const stop = onPinoConfig(port, (config) => got.push(config))
  port.emit('message', { code: 'FLUSH' })
  port.emit('message', 'text')
  port.emit('message', { code: 'PINO_CONFIG', config: 'not an object' })
  port.emit('message', { code: 'PINO_CONFIG', config: { messageKey: 'm' } })
  t.same(got, [{}], 'a config that is no object counts as none')
  t.equal(port.listenerCount('message'), 0)
  stop()
  const other = new EventEmitter()
  onPinoConfig(other, (config) => got.push(config))()
  t.equal(other.listenerCount('message'), 0, 'stopped before it came')
})

t.test('HeldLines: calls full once past its bound', async (t) => {
  let full = 0
  const held = new HeldLines(10, () => full++)
  held.line('12345')
  held.line('12345')
  t.equal(full, 0)
  held.line('1')
  t.equal(full, 1)
  t.same(held.lines, ['12345', '12345', '1'])
})
