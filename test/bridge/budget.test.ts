/** Publish budgets (bridge/src/mqtt/budget.ts): pure token buckets, the time passed in. */
import assert from 'node:assert/strict';
import { LIMITS } from '@flotilla/protocol';
import { deviceBudget, resume, settled, take, takeEvent, bucket } from '../../bridge/src/mqtt/budget.js';

const events = { perSecond: 1, burst: 4 };
const packets = { perSecond: 100, burst: 200 };
const reports = { perSecond: 2, burst: 30 };
const rates = { events, packets, reports };

describe('publish budgets', () => {
  it('a bucket gives its burst at once, then its rate', () => {
    const b = bucket({ perSecond: 2, burst: 3 }, 0);
    assert.deepEqual([1, 2, 3, 4].map(() => take(b, { perSecond: 2, burst: 3 }, 0)), [true, true, true, false]);
    assert.equal(take(b, { perSecond: 2, burst: 3 }, 499), false, 'not yet one token');
    assert.equal(take(b, { perSecond: 2, burst: 3 }, 500), true);
    // Idle for long: back to the burst, no more.
    assert.deepEqual([1, 2, 3, 4].map(() => take(b, { perSecond: 2, burst: 3 }, 60_000)), [true, true, true, false]);
  });

  it('a clock going back refills nothing', () => {
    const b = bucket({ perSecond: 1, burst: 1 }, 10_000);
    assert.equal(take(b, { perSecond: 1, burst: 1 }, 10_000), true);
    assert.equal(take(b, { perSecond: 1, burst: 1 }, 5_000), false);
  });

  it('events: the burst, then the offline backlog, then up to the burst again past the rate, then refused', () => {
    const b = deviceBudget(rates, 0);
    const n = events.burst + LIMITS.offlineQueueMax + events.burst;
    for (let i = 0; i < n; i++) assert.equal(takeEvent(b, events, 0), true, 'event ' + i);
    assert.equal(takeEvent(b, events, 0), false);
  });

  it('a new session does not refill the budget: the backlog credit is earned back at the event rate', () => {
    const b = deviceBudget(rates, 0);
    while (takeEvent(b, events, 0));
    // Reconnected at once: nothing more.
    resume(b, events, 0);
    assert.equal(takeEvent(b, events, 0), false);
    // 3 s later: 3 tokens earned on the rate (still below 1 − burst + 3) and 3 of backlog.
    resume(b, events, 3000);
    let n = 0;
    while (takeEvent(b, events, 3000)) n++;
    assert.equal(n, 6);
    // Reconnecting twice at the same instant earns the backlog once.
    resume(b, events, 5000);
    resume(b, events, 5000);
    assert.equal(b.backlog.tokens, 2);
  });

  it('settled: refilled to what a fresh budget holds', () => {
    const b = deviceBudget(rates, 0);
    assert.equal(settled(b, rates, 0), true);
    takeEvent(b, events, 0);
    assert.equal(settled(b, rates, 0), false);
    assert.equal(settled(b, rates, 999), false);
    assert.equal(settled(b, rates, 1000), true);
    for (let i = 0; i < events.burst + 3; i++) takeEvent(b, events, 1000); // 3 from the backlog
    assert.equal(settled(b, rates, 4999), false);
    assert.equal(settled(b, rates, 5000), true);
    // Reports spent: settled once they are back to their burst (15 s at 2/s).
    for (let i = 0; i < reports.burst; i++) assert.equal(take(b.reports, reports, 5000), true);
    assert.equal(take(b.reports, reports, 5000), false);
    assert.equal(settled(b, rates, 19_999), false);
    assert.equal(settled(b, rates, 20_000), true);
  });
});
