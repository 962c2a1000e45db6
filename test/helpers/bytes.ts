/** Small byte helpers for tests. */
export const hex = (b: Uint8Array | number[]): string => Buffer.from(b instanceof Uint8Array ? b : Uint8Array.from(b)).toString('hex');

/**
 * Deep copy with every Uint8Array subclass (cbor-x returns Buffers) turned
 * into a plain Uint8Array, so deepStrictEqual compares contents, not classes.
 */
export function plain<T>(v: T): T {
  if (v instanceof Uint8Array) return new Uint8Array(v) as T;
  if (Array.isArray(v)) return v.map(plain) as T;
  if (v !== null && typeof v === 'object') {
    const out: { [k: string]: unknown } = {};
    for (const [k, x] of Object.entries(v)) out[k] = plain(x);
    return out as T;
  }
  return v;
}

/** A seeded PRNG (mulberry32), so every fuzz failure can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
