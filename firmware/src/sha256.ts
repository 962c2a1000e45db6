/**
 * SHA-256 (FIPS 180-4) in ES5, streaming, for the OTA integrity check. One
 * module-level state: the agent hashes one image at a time.
 */
// FIPS 180-4's constants, computed rather than written out (72 literals cost
// about a kilobyte of heap on the engines): K[i] is the first 32 bits of the
// fractional part of the cube root of the i-th prime, the initial hash those
// of the square roots of the first 8. A constant off by a bit would fail
// test/firmware/sha256.test.ts's vectors in Node and every OTA test on the
// engines (the device's digest must match the cloud's).
const K: number[] = [];
const H0: number[] = [];
for (let n = 2, i = 0; i < 64; n++) {
  let d = 2;
  while (d * d <= n && n % d) d++;
  if (d * d <= n) continue;
  if (i < 8) H0[i] = ((Math.sqrt(n) % 1) * 4294967296) | 0;
  K[i++] = ((Math.pow(n, 1 / 3) % 1) * 4294967296) | 0;
}

const H: number[] = [];
const W: number[] = [];
const block = new Uint8Array(64);
let blockLen = 0;
let total = 0;
/**
 * Hashes started so far: a streamed hash whose count moved between two of its
 * calls was replaced (an app's `Flotilla.sha256` during an OTA), and its
 * owner starts again.
 */
export let hashStarts = 0;

/**
 * The whole hash in one function (each function object costs heap on the
 * engines). `mode` bit 1: continue the hash under way (else start afresh);
 * bit 2: more data follows (else pad and return the digest). `sha256(data)`
 * hashes one buffer; the OTA receiver streams with modes 2, 3, ..., 1.
 */
export function sha256(data: Uint8Array): Uint8Array;
export function sha256(data: Uint8Array, mode: number): Uint8Array | null;
export function sha256(data: Uint8Array, mode?: number): Uint8Array | null {
  if (!(mode! & 1)) {
    for (let i = 0; i < 8; i++) H[i] = H0[i];
    blockLen = 0;
    total = 0;
    hashStarts++;
  }
  total += data.length;
  // Pass 0 feeds the data; pass 1 (the last call) the padding: 0x80, zeros, the length in bits.
  for (let pass = 0; pass < 2; pass++) {
    let src = data;
    if (pass) {
      if (mode! & 2) return null;
      const bits = total * 8;
      src = new Uint8Array(((blockLen < 56 ? 56 : 120) - blockLen) + 8);
      src[0] = 0x80;
      // Big-endian 64-bit (images are far below 2^32 bytes).
      const hi = Math.floor(bits / 4294967296);
      for (let i = 0; i < 4; i++) {
        src[src.length - 8 + i] = (hi >>> (24 - 8 * i)) & 255;
        src[src.length - 4 + i] = (bits >>> (24 - 8 * i)) & 255;
      }
    }
    for (let k = 0; k < src.length; k++) {
      block[blockLen++] = src[k];
      if (blockLen < 64) continue;
      blockLen = 0;
      for (let i = 0; i < 16; i++) W[i] = (block[i * 4] << 24) | (block[i * 4 + 1] << 16) | (block[i * 4 + 2] << 8) | block[i * 4 + 3];
      for (let i = 16; i < 64; i++) {
        const x = W[i - 15];
        const y = W[i - 2];
        const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
      }
      let a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
      for (let i = 0; i < 64; i++) {
        const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
        const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        h = g;
        g = f;
        f = e;
        e = (d + t1) | 0;
        d = c;
        c = b;
        b = a;
        a = (t1 + t2) | 0;
      }
      H[0] = (H[0] + a) | 0;
      H[1] = (H[1] + b) | 0;
      H[2] = (H[2] + c) | 0;
      H[3] = (H[3] + d) | 0;
      H[4] = (H[4] + e) | 0;
      H[5] = (H[5] + f) | 0;
      H[6] = (H[6] + g) | 0;
      H[7] = (H[7] + h) | 0;
    }
  }
  const digest = new Uint8Array(32);
  for (let i = 0; i < 32; i++) digest[i] = (H[i >> 2] >>> (24 - 8 * (i & 3))) & 255;
  return digest;
}
