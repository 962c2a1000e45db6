/**
 * Log lines a flood must not multiply: at most one per key every `everyMs`,
 * and that one says how many happened since the last (its `count`). What a
 * period held back is written when it ends, so a burst's size is never lost.
 * Keys are few (a refusal's kind, an error's kind, a webhook); at most
 * `maxKeys` are tracked, a key quiet for a whole period making room, and
 * past that every key shares one.
 */
export function logThrottle(everyMs = 10_000, maxKeys = 64): (key: string, write: (count: number) => void) => void {
  const seen = new Map<string, { count: number; at: number; write: (count: number) => void; timer: NodeJS.Timeout | null }>();
  const flush = (key: string) => {
    const r = seen.get(key);
    if (!r) return;
    r.timer = null;
    if (r.count === 0) return;
    r.write(r.count);
    r.at = Date.now();
    r.count = 0;
  };
  return (key, write) => {
    const now = Date.now();
    if (!seen.has(key) && seen.size >= maxKeys) {
      for (const [k, r] of seen) if (r.timer === null && r.count === 0 && now - r.at >= everyMs) seen.delete(k);
      if (seen.size >= maxKeys) key = '(other)';
    }
    let r = seen.get(key);
    if (!r) seen.set(key, (r = { count: 0, at: -Infinity, write, timer: null }));
    r.count++;
    r.write = write;
    if (now - r.at >= everyMs) return flush(key);
    // Held back: written when the period ends, with how many.
    if (r.timer === null) {
      r.timer = setTimeout(flush, r.at + everyMs - now, key);
      r.timer.unref();
    }
  };
}
