import t from 'tap'
import { installed } from '../lib/peer'

t.test('installed: whether a package resolves from here', async (t) => {
  t.equal(installed('undici'), true)
  t.equal(installed('no-such-package-pino-bitrix24'), false)
  t.equal(installed('x', () => { throw new Error('MODULE_NOT_FOUND') }), false)
})
