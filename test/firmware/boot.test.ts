/**
 * The boot record (firmware/src/boot.ts): its 72-byte encoding, the fresh
 * record a missing or unreadable one decodes to, the A/B-with-trial
 * decisions (bootSelect, pending, confirmed), and a fast-check model in
 * which only the inactive slot is ever written: whatever the sequence of
 * OTA writes, boots, confirmations and power cuts, the slot bootSelect
 * picks always holds a complete image.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BootRecord, bootSelect, confirmed, copy, decodeBoot, encodeBoot, freshRecord, NO_SLOT, OtaJobRecord, pending, runningSlot,
} from '../../firmware/src/boot.js';
import { plain } from '../helpers/bytes.js';

const sha = (seed: number): Uint8Array => Uint8Array.from({ length: 32 }, (_, i) => (seed * 31 + i * 7) & 255);

function job(over: Partial<OtaJobRecord> = {}): OtaJobRecord {
  return { job: 0xdeadbeef, version: 42, size: 123456, chunkSize: 4096, offset: 65536, sha256: sha(3), ...over };
}

function record(over: Partial<BootRecord> = {}): BootRecord {
  return { ...freshRecord(), ...over };
}

const roundTrip = (r: BootRecord): BootRecord => decodeBoot(encodeBoot(r));

describe('firmware boot record', () => {
  describe('encoding', () => {
    it('encodes to 72 bytes starting with the magic and format', () => {
      const b = encodeBoot(freshRecord());
      assert.equal(b.length, 72);
      assert.equal(b[0], 0x46);
      assert.equal(b[1], 1);
    });

    it('round-trips records without a job', () => {
      const cases: BootRecord[] = [
        freshRecord(),
        record({ active: 1 }),
        record({ active: 0, trial: 1, trialVersion: 7, tries: 1 }),
        record({ active: 1, trial: 0, trialVersion: 0xfffffffe, tries: 255 }),
        record({ rolledBackFrom: 0 }),
        record({ rolledBackFrom: 9 }),
        record({ rolledBackFrom: 0xfffffffe }),
        record({ rolledBackFrom: -1, active: 1, trial: NO_SLOT }),
      ];
      for (const r of cases) assert.deepEqual(plain(roundTrip(r)), plain(r), JSON.stringify(r));
    });

    it('round-trips records with a job (rolledBackFrom -1 and a value)', () => {
      for (const rolledBackFrom of [-1, 0, 17]) {
        for (const j of [job(), job({ job: 0, version: 0, size: 0, chunkSize: 0, offset: 0, sha256: new Uint8Array(32) }), job({ job: 0xffffffff, offset: 123456, sha256: new Uint8Array(32).fill(255) })]) {
          const r = record({ active: 1, trial: NO_SLOT, rolledBackFrom, job: j });
          const back = roundTrip(r);
          assert.deepEqual(plain(back), plain(r));
          assert.notEqual(back.job!.sha256, j.sha256, 'the decoded digest is a copy');
        }
      }
    });

    it('decodes from a Uint8Array view at an offset into a larger buffer', () => {
      const r = record({ active: 1, trial: 0, trialVersion: 5, tries: 1, rolledBackFrom: 3, job: job() });
      const big = new Uint8Array(200);
      big.set(encodeBoot(r), 50);
      assert.deepEqual(plain(decodeBoot(big.subarray(50, 122))), plain(r));
    });

    it('decodes null, short, wrong-magic or wrong-format bytes as a fresh record', () => {
      const good = encodeBoot(record({ active: 1, trial: 0, trialVersion: 3, tries: 1, rolledBackFrom: 2 }));
      const wrongMagic = good.slice();
      wrongMagic[0] = 0x47;
      const wrongFormat = good.slice();
      wrongFormat[1] = 2;
      const erased = new Uint8Array(72).fill(0xff);
      for (const [name, b] of [['null', null], ['empty', new Uint8Array(0)], ['short', good.subarray(0, 71)], ['wrong magic', wrongMagic], ['wrong format', wrongFormat], ['erased flash', erased]] as const) {
        assert.deepEqual(decodeBoot(b), freshRecord(), name);
      }
    });

    it('decodes out-of-range slot bytes to safe values', () => {
      const b = encodeBoot(record({ active: 1, trial: 1, tries: 1 }));
      b[2] = 7; // active: not 1, so 0
      b[3] = 9; // trial: neither slot, so none
      const r = decodeBoot(b);
      assert.equal(r.active, 0);
      assert.equal(r.trial, NO_SLOT);
    });
  });

  describe('decisions', () => {
    type Row = { name: string; given: BootRecord; slot: number; trial: boolean; write: BootRecord | null };
    const rows: Row[] = [
      { name: 'fresh device → slot 0, nothing written', given: freshRecord(), slot: 0, trial: false, write: null },
      { name: 'settled on slot 1 → slot 1', given: record({ active: 1 }), slot: 1, trial: false, write: null },
      {
        name: 'trial with one try → boots the trial, takes the try',
        given: record({ active: 0, trial: 1, trialVersion: 8, tries: 1 }),
        slot: 1, trial: true, write: record({ active: 0, trial: 1, trialVersion: 8, tries: 0 }),
      },
      {
        name: 'trial with three tries → boots the trial, two left',
        given: record({ active: 1, trial: 0, trialVersion: 9, tries: 3 }),
        slot: 0, trial: true, write: record({ active: 1, trial: 0, trialVersion: 9, tries: 2 }),
      },
      {
        name: 'trial with no tries → rolls back to active, records the version, clears the trial',
        given: record({ active: 0, trial: 1, trialVersion: 8, tries: 0 }),
        slot: 0, trial: false, write: record({ active: 0, trial: NO_SLOT, trialVersion: 0, tries: 0, rolledBackFrom: 8 }),
      },
      {
        name: 'rollback from slot 0 to active slot 1 keeps the job record',
        given: record({ active: 1, trial: 0, trialVersion: 4, tries: 0, job: job() }),
        slot: 1, trial: false, write: record({ active: 1, trial: NO_SLOT, trialVersion: 0, tries: 0, rolledBackFrom: 4, job: job() }),
      },
    ];
    for (const row of rows) {
      it('bootSelect: ' + row.name, () => {
        const before = plain(row.given);
        const c = bootSelect(row.given);
        assert.equal(c.slot, row.slot);
        assert.equal(c.trial, row.trial);
        assert.deepEqual(plain(c.write), plain(row.write));
        assert.deepEqual(plain(row.given), before, 'the given record is not mutated');
      });
    }

    it('pending marks the slot for one trial and ends the job', () => {
      const r = record({ active: 0, rolledBackFrom: 3, job: job() });
      const p = pending(r, 1, 11);
      assert.deepEqual(plain(p), plain(record({ active: 0, trial: 1, trialVersion: 11, tries: 1, rolledBackFrom: 3, job: null })));
      assert.equal(runningSlot(p), 1);
      assert.deepEqual(plain(r.job), plain(job()), 'input not mutated');
    });

    it('confirmed makes the trial slot the active one', () => {
      const r = record({ active: 0, trial: 1, trialVersion: 11, tries: 0 });
      const c = confirmed(r);
      assert.deepEqual(plain(c), plain(record({ active: 1, trial: NO_SLOT, trialVersion: 0, tries: 0 })));
      assert.equal(runningSlot(c), 1);
      assert.equal(bootSelect(c).slot, 1);
      assert.equal(r.trial, 1, 'input not mutated');
    });

    it('confirmed without a trial changes nothing that matters', () => {
      const r = record({ active: 1, rolledBackFrom: 2 });
      assert.deepEqual(plain(confirmed(r)), plain(r));
    });

    it('a full cycle: pending → trial boot → confirm → settled; and pending → trial boot → reset → rollback', () => {
      let r = pending(freshRecord(), 1, 2);
      let c = bootSelect(r);
      assert.deepEqual([c.slot, c.trial], [1, true]);
      r = confirmed(c.write!);
      c = bootSelect(r);
      assert.deepEqual([c.slot, c.trial, c.write], [1, false, null]);

      r = pending(r, 0, 3);
      c = bootSelect(r);
      assert.deepEqual([c.slot, c.trial], [0, true]);
      c = bootSelect(c.write!); // reset before confirming
      assert.deepEqual([c.slot, c.trial], [1, false]);
      assert.equal(c.write!.rolledBackFrom, 3);
      assert.equal(c.write!.trial, NO_SLOT);
    });

    it('copy shares nothing mutable but the digest bytes', () => {
      const r = record({ job: job() });
      const c = copy(r);
      c.job!.offset = 1;
      c.active = 1;
      assert.equal(r.job!.offset, 65536);
      assert.equal(r.active, 0);
    });
  });

  describe('property: only the inactive slot is written, so a complete image always boots', () => {
    type Slot = { version: number; complete: boolean };
    type Op =
      | { kind: 'ota'; version: number; cutAfterBytes: boolean } // write the inactive slot; maybe lose power before the mark
      | { kind: 'boot' } // a reset: the bootloader picks and persists
      | { kind: 'confirm' } // the running image reached the cloud
      | { kind: 'powerCut' }; // nothing persisted changes

    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('ota' as const), version: fc.integer({ min: 2, max: 1000 }), cutAfterBytes: fc.boolean() }),
      fc.constant({ kind: 'boot' as const }),
      fc.constant({ kind: 'confirm' as const }),
      fc.constant({ kind: 'powerCut' as const }),
    );

    it('holds for any sequence of operations', () => {
      fc.assert(
        fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
          // Flash: slot 0 ships with version 1; slot 1 is erased (incomplete).
          const slots: Slot[] = [{ version: 1, complete: true }, { version: 0, complete: false }];
          let persisted: Uint8Array | null = null; // a fresh device has no record
          const load = () => decodeBoot(persisted);
          const save = (r: BootRecord) => (persisted = encodeBoot(r));
          // The first boot.
          let choice = bootSelect(load());
          assert.ok(slots[choice.slot].complete);
          if (choice.write) save(choice.write);
          let runningTrial = choice.trial;
          let running = choice.slot;
          for (const o of ops) {
            if (o.kind === 'ota') {
              const r = load();
              // The agent refuses an update while a trial is pending or running (OtaReceiver.begin: 'busy').
              if (r.trial !== NO_SLOT) continue;
              const target = 1 - runningSlot(r);
              assert.notEqual(target, running, 'the running slot is never written');
              slots[target] = { version: o.version, complete: false };
              if (o.cutAfterBytes) continue; // power lost mid-transfer or before the mark
              slots[target].complete = true; // SHA-256 checked
              save(pending(r, target, o.version));
            } else if (o.kind === 'confirm') {
              // Only a trial image confirms itself, once it reached the cloud.
              // (Checking the running boot, not just the record: after an OTA in this run the
              // record names the next image as trial, and that one has not booted yet.)
              if (runningTrial && load().trial === running) {
                save(confirmed(load()));
                runningTrial = false;
              }
            } else if (o.kind === 'boot' || o.kind === 'powerCut') {
              choice = bootSelect(load());
              assert.ok(slots[choice.slot].complete, 'boots a complete image (slot ' + choice.slot + ', v' + slots[choice.slot].version + ')');
              if (choice.write) save(choice.write);
              runningTrial = choice.trial;
              running = choice.slot;
            }
            // Whatever the record says now, the next boot would find a complete image.
            const next = bootSelect(load());
            assert.ok(slots[next.slot].complete, 'next boot picks a complete image');
            // And if that is a trial, its fallback is complete too.
            if (next.trial) assert.ok(slots[load().active].complete, 'the rollback target is complete');
          }
        }),
        { numRuns: 500 },
      );
    });

    it('a trial that never confirms is rolled back after its tries, reporting its version', () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 1, max: 1 << 30 }), fc.integer({ min: 0, max: 5 }), (active, version, tries) => {
          let r: BootRecord = { ...pending(record({ active }), 1 - active, version), tries };
          for (let i = 0; i < tries; i++) {
            const c = bootSelect(r);
            assert.deepEqual([c.slot, c.trial], [1 - active, true]);
            r = decodeBoot(encodeBoot(c.write!));
          }
          const c = bootSelect(r);
          assert.deepEqual([c.slot, c.trial, c.write!.rolledBackFrom, c.write!.trial], [active, false, version, NO_SLOT]);
        }),
        { numRuns: 200 },
      );
    });
  });
});
