/**
 * SHA-256 (FIPS 180-4) in ES5, streaming, for the OTA integrity check. One
 * module-level state: the agent hashes one image at a time.
 */
const K = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
  0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
  0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
  0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

const H: number[] = [];
const W: number[] = [];
const block = new Uint8Array(64);
let blockLen = 0;
let total = 0;

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
    H[0] = 0x6a09e667;
    H[1] = 0xbb67ae85;
    H[2] = 0x3c6ef372;
    H[3] = 0xa54ff53a;
    H[4] = 0x510e527f;
    H[5] = 0x9b05688c;
    H[6] = 0x1f83d9ab;
    H[7] = 0x5be0cd19;
    blockLen = 0;
    total = 0;
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
