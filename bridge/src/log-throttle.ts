/**
 * Log lines a flood must not multiply: at most one per key every `everyMs`,
 * and that one says how many happened since the last (its `count`). Keys are
 * few (a refusal's reason, an error's kind); at most `maxKeys` are tracked,
 * past that every key shares one.
 */
export function logThrottle(everyMs = 10_000, maxKeys = 64): (key: string, write: (count: number) => void) => void {
  const seen = new Map<string, { count: number; at: number }>();
  return (key, write) => {
    if (!seen.has(key) && seen.size >= maxKeys) key = '(other)';
    let r = seen.get(key);
    if (!r) seen.set(key, (r = { count: 0, at: -Infinity }));
    r.count++;
    const now = Date.now();
    if (now - r.at < everyMs) return;
    write(r.count);
    r.at = now;
    r.count = 0;
  };
}
