/**
 * The random values a person pastes after a flag (tokens, device secrets,
 * claim codes, the first owner's password) never start with '-', so
 * `--token T` never reads as an option (one in 64 did: flotilla-simulate's
 * parseArgs called the argument ambiguous).
 */
import assert from 'node:assert/strict';
import { newDeviceSecret, newToken, randomWord } from '../../bridge/src/store/secrets.js';
import { newClaimCode } from '../../bridge/src/customers/claims.js';

describe('random words for command lines', () => {
  it("are base64url of the asked length and never start with '-' (4,000 draws; without the redraw about 62 would)", () => {
    const draws: [string, number][] = [];
    for (let i = 0; i < 1000; i++) draws.push([newToken(), 43], [newDeviceSecret(), 32], [newClaimCode(), 32], [randomWord(12), 16]);
    for (const [w, length] of draws) {
      assert.match(w, /^[A-Za-z0-9_][A-Za-z0-9_-]*$/, w);
      assert.equal(w.length, length, w);
    }
    assert.equal(new Set(draws.map(([w]) => w)).size, draws.length, 'no repeats');
  });
});
