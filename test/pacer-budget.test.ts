import t from 'tap'
import { PacerBudget } from '../lib/pacer-budget'

t.test('the pacer paces, a pause holds, nothing changes by itself', async (t) => {
  const budget = new PacerBudget(2, 2, 0)
  budget.onChange(() => t.fail('never called'))
  t.equal(budget.take(0), 0)
  t.equal(budget.take(0), 0)
  t.equal(budget.take(0), 500, 'burst spent: the next slot in 500 ms')
  budget.pause(3000)
  budget.pause(2000)
  t.equal(budget.pausedUntil(), 3000, 'the longest pause wins')
  t.equal(budget.take(1000), 2000, 'paused')
  budget.slowDown(3000)
  t.equal(budget.take(3000), 1000, 'half the rate')
  budget.speedUp()
  budget.observe()
  t.equal(budget.take(4000), 0)
  await budget.close()
})
