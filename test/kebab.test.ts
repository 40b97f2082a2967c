import t from 'tap'
import { kebab } from '../lib/kebab'

t.test('an option name as a flag', async (t) => {
  t.equal(kebab('maxRequestsPerSecond'), 'max-requests-per-second')
  t.equal(kebab('keepNonBmp'), 'keep-non-bmp')
  t.equal(kebab('level'), 'level')
})
