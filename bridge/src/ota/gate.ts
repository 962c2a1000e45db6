/**
 * How many jobs a rollout may start now, and whether it must pause: pure, from
 * the rollout and its counts. Failures are counted from the last (re)start.
 */
import type { Rollout, RolloutCounts } from '../store/store.js';

export interface Gate {
  /** Jobs that may start now. */
  slots: number;
  /** Set when the rollout must pause: why. */
  pause: string | null;
}

export function gate(r: Pick<Rollout, 'state' | 'concurrency' | 'batchSize' | 'failureThreshold' | 'minAttempts'>, c: Omit<RolloutCounts, 'failedDevices' | 'reached'>): Gate {
  if (r.state !== 'running') return { slots: 0, pause: null };
  const finished = c.done + c.failed;
  if (finished >= r.minAttempts && c.failed / finished > r.failureThreshold) {
    const pct = (x: number) => Math.round(x * 1000) / 10 + '%';
    return { slots: 0, pause: `${c.failed} of ${finished} updates failed (${pct(c.failed / finished)}), above the threshold of ${pct(r.failureThreshold)}` };
  }
  let slots = r.concurrency - c.active;
  if (r.batchSize > 0) {
    const into = c.started % r.batchSize;
    // A batch fully started waits for its last job; a partly started one fills up.
    const room = into === 0 ? (c.active > 0 ? 0 : r.batchSize) : r.batchSize - into;
    slots = Math.min(slots, room);
  }
  return { slots: Math.max(0, slots), pause: null };
}
