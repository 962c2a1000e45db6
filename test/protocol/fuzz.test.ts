/**
 * Fuzz: 100,000 random and mutated buffers into decode, and 100,000 random and
 * mutated strings into parseTopic. Nothing may throw but a ProtocolError.
 * Differential: the core's own CBOR decoder (what the firmware decodes with)
 * against cbor-x (what the cloud decodes with), and its UTF-8 decoder against
 * a fatal TextDecoder, on the same kind of input.
 * Seeded, so a failure prints the seed and case that reproduce it.
 */
import assert from 'node:assert/strict';
import { Decoder, type Options } from 'cbor-x';
import { decode, isProtocolError, parseTopic, topics } from '@flotilla/protocol';
import { decodeCbor, scanCbor, utf8Decode } from '@flotilla/protocol/core';
import { VECTORS } from '../vectors/messages.js';
import { hex, plain, prng } from '../helpers/bytes.js';

const CASES = 100_000;
const SEED = 0x5eed;

function mutate(rand: () => number, src: number[]): number[] {
  const b = src.slice();
  const n = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(rand() * (b.length + 1));
    const op = rand();
    if (op < 0.4 && b.length) b[at % b.length] = Math.floor(rand() * 256); // replace
    else if (op < 0.6 && b.length) b[at % b.length] ^= 1 << Math.floor(rand() * 8); // flip a bit
    else if (op < 0.8) b.splice(at, 0, Math.floor(rand() * 256)); // insert
    else b.splice(at, 1 + Math.floor(rand() * 3)); // delete
  }
  return b;
}

/** Even cases: a mutated vector; odd: random bytes, most starting like a message. */
function fuzzBuffer(rand: () => number, i: number): number[] {
  if (i % 2 === 0) return mutate(rand, VECTORS[Math.floor(rand() * VECTORS.length)].bytes);
  const len = Math.floor(rand() * 64);
  const bytes = Array.from({ length: len }, () => Math.floor(rand() * 256));
  // Most random buffers die at the first byte; often start with a plausible array head.
  if (len > 0 && rand() < 0.8) bytes[0] = 0x80 + Math.floor(rand() * 10);
  if (len > 1 && rand() < 0.8) bytes[1] = [1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20][Math.floor(rand() * 12)];
  return bytes;
}

/** The error a call throws, as `code: message`, or null. */
function thrown(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (e) {
    if (!isProtocolError(e)) throw e;
    return e.code + ': ' + e.message;
  }
}

describe('protocol fuzz', () => {
  it('decode throws nothing but ProtocolError on 100,000 random and mutated buffers', () => {
    const rand = prng(SEED);
    let accepted = 0;
    for (let i = 0; i < CASES; i++) {
      const bytes = fuzzBuffer(rand, i);
      try {
        decode(Uint8Array.from(bytes));
        accepted++;
      } catch (e) {
        if (!isProtocolError(e)) assert.fail('case ' + i + ' (seed ' + SEED + ', bytes ' + Buffer.from(bytes).toString('hex') + ') threw ' + String(e));
      }
    }
    // The mutations should reach past the scanner into layout and validation.
    assert.ok(accepted > 100, 'only ' + accepted + ' cases decoded');
  });

  it('parseTopic throws nothing but ProtocolError on 100,000 random and mutated strings', () => {
    const rand = prng(SEED + 1);
    const id = '0123456789abcdef01234567';
    const seeds = [topics.device.hello(id), topics.device.event(id, 'a/b'), topics.cloud.ota(id), topics.app.reply('c1'), '$SYS/x', '#'];
    const chars = 'dev/clou+#$\u0000aé0123456789abcdef';
    for (let i = 0; i < CASES; i++) {
      let t: string;
      if (i % 2 === 0) {
        const s = seeds[Math.floor(rand() * seeds.length)].split('');
        const n = 1 + Math.floor(rand() * 3);
        for (let k = 0; k < n; k++) {
          const at = Math.floor(rand() * (s.length + 1));
          const c = chars.charAt(Math.floor(rand() * chars.length));
          if (rand() < 0.5) s.splice(at, 1, c);
          else s.splice(at, 0, c);
        }
        t = s.join('');
      } else {
        const len = Math.floor(rand() * 48);
        t = '';
        for (let k = 0; k < len; k++) t += rand() < 0.8 ? chars.charAt(Math.floor(rand() * chars.length)) : String.fromCharCode(Math.floor(rand() * 0xffff));
      }
      try {
        parseTopic(t);
      } catch (e) {
        if (!isProtocolError(e)) assert.fail('case ' + i + ' (' + JSON.stringify(t) + ') threw ' + String(e));
      }
    }
  });

  it("decodeCbor builds what cbor-x decodes after the scanner, or fails with the scanner's error, on 100,000 random and mutated buffers", () => {
    const rand = prng(SEED + 2);
    // The cloud codec's decoder settings (protocol/src/cloud/codec.ts).
    const cborx = new Decoder({ useRecords: false, mapsAsObjects: true, structuredClone: false, int64AsNumber: true } as Options);
    let built = 0;
    for (let i = 0; i < CASES; i++) {
      const bytes = Uint8Array.from(fuzzBuffer(rand, i));
      const where = 'case ' + i + ' (seed ' + (SEED + 2) + ', bytes ' + hex(bytes) + ')';
      let ours: unknown;
      const error = thrown(() => (ours = decodeCbor(bytes)));
      assert.equal(thrown(() => scanCbor(bytes)), error, where + ': scanning alone fails otherwise');
      if (error !== null) continue;
      built++;
      assert.deepStrictEqual(plain(ours), plain(cborx.decode(bytes)), where);
    }
    assert.ok(built > 2_000, 'only ' + built + ' cases were well-formed');
  });

  it('utf8Decode agrees with a fatal TextDecoder on 100,000 random byte strings, and names the first bad byte', () => {
    const rand = prng(SEED + 3);
    const fatal = new TextDecoder('utf-8', { fatal: true });
    // Lead bytes of every length, continuation bytes, and the edges (overlongs, surrogates, above U+10FFFF).
    const pool = [0x00, 0x41, 0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0x9f, 0xa0, 0x8f, 0x90];
    let valid = 0;
    for (let i = 0; i < CASES; i++) {
      const len = Math.floor(rand() * 12);
      const bytes = Uint8Array.from({ length: len }, () => (rand() < 0.7 ? pool[Math.floor(rand() * pool.length)] : Math.floor(rand() * 256)));
      const where = 'case ' + i + ' (bytes ' + hex(bytes) + ')';
      let expected: string | null = null;
      try {
        expected = fatal.decode(bytes);
      } catch {
        // invalid: expected stays null
      }
      const text = utf8Decode(bytes, 0, len, true);
      if (expected !== null) {
        valid++;
        assert.equal(text, expected, where);
        assert.equal(utf8Decode(bytes, 0, len), '', where + ': checking alone');
      } else {
        assert.equal(typeof text, 'number', where + ': accepted');
        const bad = text as number;
        // Everything before the named byte is valid, and a sequence starting there is not.
        assert.doesNotThrow(() => fatal.decode(bytes.subarray(0, bad)), where);
        assert.equal(utf8Decode(bytes, bad, len, true), bad, where);
        assert.equal(utf8Decode(bytes, 0, len), bad, where + ': checking alone');
      }
    }
    assert.ok(valid > 10_000, 'only ' + valid + ' valid cases');
  });
});
