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
