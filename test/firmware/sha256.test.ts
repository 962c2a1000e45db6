/**
 * The agent's ES5 SHA-256 (firmware/src/sha256.ts) against node:crypto:
 * known vectors, the padding boundaries around 56 and 64 bytes, a large
 * buffer, and streaming with arbitrary split points.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { sha256 } from '../../firmware/src/sha256.js';
import { hex, prng } from '../helpers/bytes.js';

const reference = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Deterministic bytes of a given length. */
function bytes(n: number, seed: number): Uint8Array {
  const r = prng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

/**
 * Hashes `data` in pieces cut at the given (sorted, in-range) points, with
 * the modes the OTA receiver streams with: 2 (start, more follows), 3
 * (continue, more follows), then 1 (continue, finish) with no data.
 */
function streamed(data: Uint8Array, cuts: number[]): Uint8Array {
  let at = 0;
  let mode = 2;
  for (const c of [...cuts, data.length]) {
    sha256(data.subarray(at, c), mode);
    mode = 3;
    at = c;
  }
  return sha256(new Uint8Array(0), 1) as Uint8Array;
}

function randomCuts(n: number, r: () => number, count: number): number[] {
  const cuts: number[] = [];
  for (let i = 0; i < count; i++) cuts.push(Math.floor(r() * (n + 1)));
  return cuts.sort((a, b) => a - b);
}

describe('firmware sha256', () => {
  it('hashes the empty input', () => {
    assert.equal(hex(sha256(new Uint8Array(0))), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(hex(sha256(new Uint8Array(0))), reference(new Uint8Array(0)));
  });

  it("hashes 'abc' (FIPS 180-4 example)", () => {
    const abc = new TextEncoder().encode('abc');
    assert.equal(hex(sha256(abc)), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const two = new TextEncoder().encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq');
    assert.equal(hex(sha256(two)), '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  });

  it('is right at the padding boundaries (55, 56, 63, 64, 65, 119, 120 bytes and neighbours)', () => {
    for (const n of [1, 54, 55, 56, 57, 62, 63, 64, 65, 118, 119, 120, 121, 127, 128, 129]) {
      const data = bytes(n, n);
      assert.equal(hex(sha256(data)), reference(data), 'length ' + n);
      // All-0x80 and all-zero inputs too: the padding byte itself must not be confused with data.
      assert.equal(hex(sha256(new Uint8Array(n).fill(0x80))), reference(new Uint8Array(n).fill(0x80)), 'length ' + n + ' of 0x80');
      assert.equal(hex(sha256(new Uint8Array(n))), reference(new Uint8Array(n)), 'length ' + n + ' of zeros');
    }
  });

  it('hashes a 1 MB buffer', () => {
    const data = bytes(1 << 20, 0x5eed);
    assert.equal(hex(sha256(data)), reference(data));
  });

  it('streams: random split points (including empty updates) equal one shot', () => {
    const r = prng(0xc0ffee);
    for (let round = 0; round < 50; round++) {
      const n = Math.floor(r() * 700);
      const data = bytes(n, 1000 + round);
      const cuts = randomCuts(n, r, Math.floor(r() * 12));
      assert.equal(hex(streamed(data, cuts)), reference(data), 'length ' + n + ', cuts ' + cuts.join(','));
    }
    // Byte by byte, across several blocks.
    const data = bytes(200, 77);
    const cuts = Array.from({ length: 200 }, (_, i) => i);
    assert.equal(hex(streamed(data, cuts)), reference(data));
  });

  it('restarts cleanly: a hash started (mode 0 or 2) after an unfinished stream forgets it', () => {
    sha256(bytes(100, 1), 2);
    const data = bytes(70, 2);
    assert.equal(hex(sha256(data)), reference(data));
    // And a finished stream leaves nothing behind for the next one.
    assert.equal(hex(sha256(data)), reference(data));
  });

  it('matches node:crypto on 200 random lengths (seeded)', () => {
    const r = prng(20240601);
    for (let i = 0; i < 200; i++) {
      const n = Math.floor(r() * 4096);
      const data = bytes(n, 5000 + i);
      assert.equal(hex(sha256(data)), reference(data), 'length ' + n + ' (case ' + i + ')');
      if (i % 10 === 0) assert.equal(hex(streamed(data, randomCuts(n, r, 3))), reference(data), 'streamed, length ' + n);
    }
  });
});
