/** The broker's log throttle: one line per kind per period, saying how many happened since the last line. */
import assert from 'node:assert/strict';
import { logThrottle } from '../../bridge/src/log-throttle.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('logThrottle', () => {
  it('writes the first of each kind at once, then one line a period with the count since', async () => {
    const throttled = logThrottle(40);
    const written: [string, number][] = [];
    const hit = (key: string) => throttled(key, (count) => written.push([key, count]));
    for (let i = 0; i < 5; i++) hit('a');
    hit('b');
    assert.deepEqual(written, [['a', 1], ['b', 1]]);
    // The period's end writes the four held back (before, they waited for the next one, which may never come).
    await sleep(60);
    assert.deepEqual(written, [['a', 1], ['b', 1], ['a', 4]]);
    hit('a');
    await sleep(60);
    assert.deepEqual(written, [['a', 1], ['b', 1], ['a', 4], ['a', 1]]);
  });

  it('lets a key quiet for a period make room for a new one; a flood of new keys shares one (client-chosen text cannot mute the others for good)', async () => {
    const throttled = logThrottle(30, 2);
    const written: string[] = [];
    for (const key of ['a', 'b', 'c']) throttled(key, () => written.push(key));
    assert.deepEqual(written, ['a', 'b', 'c'], 'c under (other)');
    await sleep(50);
    throttled('d', () => written.push('d'));
    assert.deepEqual(written, ['a', 'b', 'c', 'd'], 'd took the place of a quiet key');
  });

  it('tracks at most maxKeys kinds: the rest share one', () => {
    const throttled = logThrottle(60_000, 2);
    const written: string[] = [];
    for (const key of ['a', 'b', 'c', 'd', 'a']) throttled(key, () => written.push(key));
    assert.deepEqual(written, ['a', 'b', 'c'], 'c and d share the last kind; a was written already');
  });
});
