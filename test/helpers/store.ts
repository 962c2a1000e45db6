/** What store tests share: a cheap scrypt cost, and the StoreError a call must be refused with. */
import assert from 'node:assert/strict';
import { isStoreError, type StoreErrorCode } from '../../bridge/src/store/store.js';

/** Cheap scrypt so the suites are quick; one test checks the real defaults. */
export const FAST = { N: 2 ** 10, r: 8, p: 1 };

/** `p` must reject with a StoreError of `code` (and a message matching `match`). */
export async function refused(p: Promise<unknown>, code: StoreErrorCode, match?: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(isStoreError(e), 'expected a StoreError, got ' + String(e));
    assert.equal(e.code, code, e.message);
    if (match) assert.match(e.message, match);
    return;
  }
  assert.fail(`expected StoreError ${code}, but it succeeded`);
}
