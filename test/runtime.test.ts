import t from 'tap'
import { pinoSendsConfig } from '../lib/runtime'

t.test('pino\'s own worker is recognised by the flag pino gives it', async (t) => {
  t.equal(pinoSendsConfig(), false, 'the test runs in the main thread')
  t.equal(pinoSendsConfig(null), false)
  t.equal(pinoSendsConfig('x'), false)
  t.equal(pinoSendsConfig({}), false)
  t.equal(pinoSendsConfig({ workerData: null }), false)
  t.equal(pinoSendsConfig({ workerData: { pinoWillSendConfig: 'yes' } }), false)
  t.equal(pinoSendsConfig({ workerData: { pinoWillSendConfig: true } }), true)
})

t.test('thread-stream\'s worker is recognised by its shared buffers', async (t) => {
  const { isThreadStreamData } = await import('../lib/runtime')
  t.equal(isThreadStreamData(), false, 'the test runs in the main thread')
  t.equal(isThreadStreamData({ dataBuf: new SharedArrayBuffer(4), stateBuf: new SharedArrayBuffer(4) }), true)
  t.equal(isThreadStreamData({ dataBuf: new ArrayBuffer(4), stateBuf: new ArrayBuffer(4) }), false)
  t.equal(isThreadStreamData(null), false)
})
