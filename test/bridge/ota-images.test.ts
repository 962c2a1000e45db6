/**
 * The bridge's image cache (bridge/src/ota/files.ts ImageCache) on real files
 * in a temp dir: one copy per image shared by its transfers, never more than
 * its bound, images in use never evicted, disk reads when an image does not
 * fit, a missing or short file refused, a deleted version forgotten. Also:
 * one-off flash images left by ended jobs are swept at start.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flashPath, ImageCache, ImageReader, isFlashPath, sweepFlashImages, versionPath } from '../../bridge/src/ota/files.js';

describe('OTA image cache', () => {
  let dir: string;
  const file = (name: string, size: number, fill: number): Buffer => {
    const b = Buffer.alloc(size, fill);
    b.writeUInt32BE(size, 0);
    writeFileSync(join(dir, name), b);
    return b;
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-images-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('shares one copy of an image between its transfers, read at once from memory', async () => {
    const a = file('a.flim', 4000, 1);
    const cache = new ImageCache(dir, 10000);
    const one = await cache.open('a.flim', 4000, 'sha-a');
    const two = await cache.open('a.flim', 4000, 'sha-a');
    assert.equal(cache.bytes, 4000, 'held once, not once per transfer');
    const piece = one.read(1000, 24);
    assert.ok(piece instanceof Uint8Array, 'no promise: the image is in memory');
    assert.deepEqual(Buffer.from(piece), a.subarray(1000, 1024));
    assert.deepEqual(Buffer.from(two.read(0, 4) as Uint8Array), a.subarray(0, 4));
    assert.throws(() => one.read(3990, 20), /image ends at 4000, asked for 4010/);
    await one.close();
    await two.close();
  });

  it('stays within its bound: unused images are evicted (least recently opened first), images in use never; an image that does not fit is read from disk', async () => {
    file('a.flim', 4000, 1);
    file('b.flim', 4000, 2);
    const c = file('c.flim', 4000, 3);
    const cache = new ImageCache(dir, 9000);
    const a = await cache.open('a.flim', 4000, 'sha-a');
    await (await cache.open('b.flim', 4000, 'sha-b')).close();
    assert.equal(cache.bytes, 8000);
    // c needs room: b is unused and goes; a is in use and stays.
    const c1 = await cache.open('c.flim', 4000, 'sha-c');
    assert.equal(cache.bytes, 8000);
    assert.ok(c1.read(0, 4) instanceof Uint8Array);
    // b again: a and c are both in use, no room: from disk.
    const b2 = await cache.open('b.flim', 4000, 'sha-b');
    assert.ok(b2 instanceof ImageReader, 'read from disk when it does not fit');
    assert.deepEqual(Buffer.from(await b2.read(4, 4)), Buffer.alloc(4, 2));
    assert.equal(cache.bytes, 8000);
    await b2.close();
    // Larger than the whole cache: from disk, always.
    file('big.flim', 10000, 4);
    const big = await cache.open('big.flim', 10000, 'sha-big');
    assert.ok(big instanceof ImageReader);
    await big.close();
    await a.close();
    await c1.close();
    assert.deepEqual(Buffer.from((await cache.open('c.flim', 4000, 'sha-c')).read(0, 4000) as Uint8Array), c);
  });

  it('refuses a missing or short file, and holds nothing for it', async () => {
    const cache = new ImageCache(dir, 10000);
    await assert.rejects(cache.open('gone.flim', 100, 'x'), /ENOENT/);
    assert.equal(cache.bytes, 0);
    file('short.flim', 50, 1);
    await assert.rejects(cache.open('short.flim', 100, 'y'), /image file has 50 bytes, expected 100/);
    assert.equal(cache.bytes, 0);
    // The file becomes whole: a later open reads it again.
    file('short.flim', 100, 1);
    assert.equal(((await cache.open('short.flim', 100, 'y')).read(0, 100) as Uint8Array).length, 100);
  });

  it('forgets a deleted version (unless a transfer still reads it), and tells images apart by their SHA-256', async () => {
    file('v.flim', 1000, 1);
    const cache = new ImageCache(dir, 10000);
    await (await cache.open('v.flim', 1000, 'old')).close();
    cache.forget('v.flim');
    assert.equal(cache.bytes, 0);
    const inUse = await cache.open('v.flim', 1000, 'old');
    cache.forget('v.flim');
    assert.equal(cache.bytes, 1000, 'in use: kept');
    await inUse.close();
    // The same path with other bytes (a version deleted and uploaded again) is another image.
    file('v.flim', 1000, 9);
    const again = await cache.open('v.flim', 1000, 'new');
    assert.deepEqual(Buffer.from(again.read(10, 2) as Uint8Array), Buffer.alloc(2, 9));
  });

  it('sweeps the one-off flash images no active job needs, and nothing else', async () => {
    assert.equal(await sweepFlashImages(dir, new Set()), 0, 'no flash directory yet: nothing to do');
    const [kept, gone1, gone2] = [flashPath(), flashPath(), flashPath()];
    const version = versionPath(1, 2);
    for (const p of [kept, gone1, gone2, version]) {
      mkdirSync(join(dir, p, '..'), { recursive: true });
      writeFileSync(join(dir, p), 'image');
    }
    assert.deepEqual([isFlashPath(kept), isFlashPath(version)], [true, false]);
    assert.equal(await sweepFlashImages(dir, new Set([kept, version])), 2);
    assert.deepEqual(readdirSync(join(dir, kept, '..')), [kept.split('/').pop()]);
    assert.ok(existsSync(join(dir, version)), 'a stored version is never swept');
  });
});
