/**
 * Flash mirrored to a directory reads back exactly what was written: chunks
 * in place (a gap stays erased, 0xff), erases, the boot record; a fleet's
 * devices borrow the factory slot until they write their own.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryFlash } from '@flotilla/simulator';

const SLOT = 16 * 1024;

describe('simulator: MemoryFlash', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-flash-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads back from its directory what was written: chunks in place, gaps erased, erases, the boot record', () => {
    const factory = MemoryFlash.factorySlot(Uint8Array.from([1, 2, 3, 4]), SLOT);
    const a = MemoryFlash.open(dir, SLOT, undefined, factory);
    a.write(1, 0, new Uint8Array(1024).fill(7));
    a.write(1, 5000, new Uint8Array(10).fill(9)); // past the end of the file: 1024..4999 stays 0xff
    a.write(1, 512, Uint8Array.from([0, 0xff, 0])); // in place, inside
    a.write(0, 2, Uint8Array.from([0xaa]));
    a.writeBoot(Uint8Array.from([0x46, 1, 2, 3]));
    const b = MemoryFlash.open(dir, SLOT);
    for (const slot of [0, 1]) assert.deepEqual(b.read(slot, 0, SLOT), a.read(slot, 0, SLOT), 'slot ' + slot);
    assert.deepEqual(b.read(1, 1024, 3976), new Uint8Array(3976).fill(0xff));
    assert.deepEqual(b.read(0, 0, 5), Uint8Array.from([1, 2, 0xaa, 4, 0xff]));
    assert.deepEqual(b.readBoot(), Uint8Array.from([0x46, 1, 2, 3]));
    a.erase(1);
    assert.deepEqual(MemoryFlash.open(dir, SLOT).read(1, 0, SLOT), new Uint8Array(SLOT).fill(0xff));
  });

  it('takes a new factory image in slot 0 while slot 0 holds an older one nothing wrote over (the scenario changed); an updated slot 0 stays', () => {
    const image = (b: number) => MemoryFlash.factorySlot(Uint8Array.from([b, b, b]), SLOT);
    MemoryFlash.open(dir, SLOT, undefined, image(1)).write(1, 0, Uint8Array.from([7])); // an update's chunk, in slot 1
    const b = MemoryFlash.open(dir, SLOT, undefined, image(2));
    assert.deepEqual([b.read(0, 0, 3), b.read(1, 0, 1)], [Uint8Array.from([2, 2, 2]), Uint8Array.from([7])], 'the new factory image, slot 1 as written');
    assert.deepEqual(MemoryFlash.open(dir, SLOT).read(0, 0, 3), Uint8Array.from([2, 2, 2]), 'and it is in the directory');
    assert.deepEqual(MemoryFlash.open(dir, SLOT, undefined, image(2)).read(0, 0, 3), Uint8Array.from([2, 2, 2]), 'the same one again');
    // An update writes slot 0: that image is the device's own from then on.
    MemoryFlash.open(dir, SLOT, undefined, image(2)).write(0, 0, Uint8Array.from([5, 5]));
    assert.deepEqual(MemoryFlash.open(dir, SLOT, undefined, image(3)).read(0, 0, 3), Uint8Array.from([5, 5, 2]));
    // An erase of slot 0 too.
    const other = join(dir, 'other');
    MemoryFlash.open(other, SLOT, undefined, image(1)).erase(0);
    assert.deepEqual(MemoryFlash.open(other, SLOT, undefined, image(2)).read(0, 0, 1), Uint8Array.from([0xff]));
  });

  it('devices borrow the factory slot, and a write copies it first', () => {
    const factory = MemoryFlash.factorySlot(Uint8Array.from([1, 2, 3]), SLOT);
    const a = MemoryFlash.factory(factory);
    const b = MemoryFlash.factory(factory);
    a.write(0, 0, Uint8Array.from([9]));
    b.erase(1);
    assert.deepEqual(a.read(0, 0, 3), Uint8Array.from([9, 2, 3]));
    assert.deepEqual(b.read(0, 0, 3), Uint8Array.from([1, 2, 3]), 'the other device still reads the factory image');
    assert.deepEqual(factory.subarray(0, 3), Uint8Array.from([1, 2, 3]), 'the shared slot is never written');
    assert.deepEqual(MemoryFlash.factory(factory).read(1, 0, 4), Uint8Array.from([0xff, 0xff, 0xff, 0xff]));
  });

  it('refuses an image larger than a slot', () => {
    assert.throws(() => MemoryFlash.factorySlot(new Uint8Array(SLOT + 1), SLOT), { message: `flash: an image of ${SLOT + 1} bytes does not fit a slot of ${SLOT}` });
  });
});
