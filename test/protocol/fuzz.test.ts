/**
 * Fuzz: 100,000 random and mutated buffers into decode, and 100,000 random and
 * mutated strings into parseTopic. Nothing may throw but a ProtocolError.
 * Seeded, so a failure prints the seed and case that reproduce it.
 */
import assert from 'node:assert/strict';
import { decode, isProtocolError, parseTopic, topics } from '@flotilla/protocol';
import { VECTORS } from '../vectors/messages.js';
import { prng } from '../helpers/bytes.js';

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

describe('protocol fuzz', () => {
  it('decode throws nothing but ProtocolError on 100,000 random and mutated buffers', () => {
    const rand = prng(SEED);
    let accepted = 0;
    for (let i = 0; i < CASES; i++) {
      let bytes: number[];
      if (i % 2 === 0) {
        bytes = mutate(rand, VECTORS[Math.floor(rand() * VECTORS.length)].bytes);
      } else {
        const len = Math.floor(rand() * 64);
        bytes = Array.from({ length: len }, () => Math.floor(rand() * 256));
        // Most random buffers die at the first byte; often start with a plausible array head.
        if (len > 0 && rand() < 0.8) bytes[0] = 0x80 + Math.floor(rand() * 10);
        if (len > 1 && rand() < 0.8) bytes[1] = [1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20][Math.floor(rand() * 12)];
      }
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
});
