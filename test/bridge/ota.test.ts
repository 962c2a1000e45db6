/**
 * Over-the-air updates end to end: a real bridge (SQLite in a temp dir, aedes
 * and the HTTP API on loopback) and real agents (the built bundle in node:vm
 * devices with their own flash), images uploaded through the API and sent by
 * the bridge. Upload and its refusals; one device flashed by file and by
 * version; link drop and resume; a chunk corrupted on its way to flash; a
 * device that never answers; an image that fails its trial.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage } from '@flotilla/simulator';
import { A2, connect } from '../helpers/bridge-fixture.js';
import { TEST_OTA, useOtaWorld, type OtaWorld, type TestDevice } from '../helpers/ota-world.js';
import { incomingDir, isFlashPath } from '../../bridge/src/ota/files.js';

/**
 * A 200 KB flash by version, the link cut a third of the way: the second
 * connection writes from the offset the device held, almost nothing twice,
 * and the job is done on its second transfer, still its first attempt (the
 * transfer the link cut had moved on: resuming it is not a new attempt).
 */
async function resumesAfterLinkDrop(w: OtaWorld): Promise<void> {
  const { f } = w;
  const writes: number[] = [];
  // The link is cut at the 61st chunk written, from the device's side: waiting for it from
  // here instead lost the race on a loaded machine (the whole image was written first).
  let cutAt = -1;
  const d: TestDevice = await w.device({
    onFlash: (op) => {
      if (op.kind !== 'write' || writes.push(op.offset) !== 61) return;
      setImmediate(() => {
        cutAt = writes.length;
        d.vm.cut();
      });
    },
  });
  const big = w.image(5, 200000);
  assert.equal((await w.upload(f.tokens.erin, big, { version: '5' })).status, 201);
  const job = (await w.call('PUT', '/v1/devices/' + d.id, f.tokens.erin, { firmware_version: 5 })).body.job;
  await w.waitFor('a third of the image', () => cutAt > 0);
  await w.waitFor('version 5', async () => (await f.bridge.store.getDevice(d.id))!.firmwareVersion === 5, 30000);
  // A job no longer sending keeps its final offset whatever a late save says.
  await f.bridge.store.saveJobOffsets([[job.id, 1]]);
  assert.equal((await f.bridge.store.getJob(job.id))!.offset, big.length);
  const after = writes.slice(cutAt);
  assert.ok(after.length > 0 && after[0] > 0, 'the second connection wrote from where the first stopped, not from 0: ' + after.slice(0, 3));
  assert.ok(writes.length < Math.ceil(big.length / 1024) + 10, 'almost no chunk written twice: ' + writes.length);
  const done = (await f.bridge.store.getJob(job.id))!;
  assert.deepEqual([done.state, done.attempts], ['done', 1]);
  assert.equal(d.version(), 5);
  d.stop();
}

describe('OTA: deleting a version still in use', function () {
  this.timeout(60000);
  let w: OtaWorld;
  useOtaWorld((x) => (w = x));

  it('keeps an unreleased version that a device is locked to or still updating to (409), and deletes it once neither holds', async () => {
    const { f } = w;
    for (const v of [23, 24]) assert.equal((await w.upload(f.tokens.erin, w.image(v), { version: String(v) })).status, 201);
    const del = (v: number) => w.call('DELETE', '/v1/products/prod-a/firmware/' + v, f.tokens.erin);
    // A2 is offline: a lock alone, then a flash that waits for it.
    assert.equal((await w.call('PUT', '/v1/products/prod-a/devices/' + A2, f.tokens.erin, { desired_firmware_version: 23 })).status, 200);
    const locked = await del(23);
    assert.deepEqual([locked.status, locked.body.error], [409, 'version 23 is in use (1 device(s) locked to it); unlock those devices, and let those updates end or flash those devices another version, first']);
    assert.equal((await w.call('PUT', '/v1/products/prod-a/devices/' + A2, f.tokens.erin, { desired_firmware_version: null })).status, 200);
    assert.equal((await w.call('PUT', '/v1/products/prod-a/devices/' + A2, f.tokens.erin, { firmware_version: 23 })).status, 200);
    assert.match((await del(23)).body.error, /^version 23 is in use \(1 update\(s\) to it not finished\)/);
    assert.equal((await w.call('GET', '/v1/products/prod-a/firmware/23', f.tokens.erin)).status, 200, 'it is still there');
    // Flashing another version supersedes the waiting update: 23 is free.
    assert.equal((await w.call('PUT', '/v1/products/prod-a/devices/' + A2, f.tokens.erin, { firmware_version: 24 })).status, 200);
    assert.equal((await del(23)).status, 204);
    assert.equal((await del(24)).status, 409);
  });
});

describe('OTA: uploads of one version racing', function () {
  this.timeout(60000);
  let w: OtaWorld;
  useOtaWorld((x) => (w = x));

  it('keeps exactly one, whose file is the one its row describes, and leaves nothing of the others on disk', async () => {
    const { f } = w;
    const bundles = Array.from({ length: 8 }, (_, i) => 'var racer = ' + i + ';');
    const answers = await Promise.all(bundles.map((b) => w.upload(f.tokens.erin, b, { version: '30' })));
    assert.deepEqual(answers.map((a) => a.status).sort(), [201, 409, 409, 409, 409, 409, 409, 409]);
    const won = answers.find((a) => a.status === 201)!.body as { sha256: string };
    const bin = await fetch(w.base + '/v1/products/prod-a/firmware/30/binary', { headers: { authorization: 'Bearer ' + f.tokens.erin } });
    assert.equal(bin.status, 200);
    assert.equal(createHash('sha256').update(Buffer.from(await bin.arrayBuffer())).digest('hex'), won.sha256, 'the file kept is the winner\'s');
    const kept = readdirSync(join(f.dir, 'firmware', String(w.product))).filter((n) => n.startsWith('30'));
    assert.equal(kept.length, 1, 'one file for version 30: ' + kept);
    const incoming = incomingDir(f.dir);
    assert.deepEqual(existsSync(incoming) ? readdirSync(incoming) : [], [], 'nothing left of the refused uploads');
  });
});

describe('OTA: firmware upload and one device', function () {
  this.timeout(60000);
  let w: OtaWorld;
  useOtaWorld((x) => (w = x));

  it('uploads an image, lists, gets, edits, downloads and deletes it while unreleased', async () => {
    const { f } = w;
    const img = w.image(10);
    const up = await w.upload(f.tokens.erin, img, { version: '10', title: 'Ten', description: 'the tenth' });
    assert.equal(up.status, 201, JSON.stringify(up.body));
    assert.equal(up.body.version, 10);
    assert.equal(up.body.size, img.length);
    assert.equal(up.body.sha256, (await import('node:crypto')).createHash('sha256').update(img).digest('hex'));
    assert.deepEqual([up.body.title, up.body.description, up.body.product_default, up.body.released], ['Ten', 'the tenth', false, false]);
    const list = await w.call('GET', '/v1/products/prod-a/firmware', f.tokens.carol);
    assert.deepEqual(list.body.map((x: { version: number }) => x.version), [10]);
    const edited = await w.call('PUT', '/v1/products/prod-a/firmware/10', f.tokens.erin, { title: 'Ten, better' });
    assert.equal(edited.body.title, 'Ten, better', JSON.stringify(edited));
    const bin = await fetch(w.base + '/v1/products/prod-a/firmware/10/binary', { headers: { authorization: 'Bearer ' + f.tokens.carol } });
    assert.equal(bin.headers.get('content-type'), 'application/octet-stream');
    assert.ok(Buffer.from(await bin.arrayBuffer()).equals(Buffer.from(img)), 'the download is the upload, byte for byte');
    assert.equal((await w.call('DELETE', '/v1/products/prod-a/firmware/10', f.tokens.carol)).status, 403, 'a Viewer cannot delete');
    assert.equal((await w.call('DELETE', '/v1/products/prod-a/firmware/10', f.tokens.erin)).status, 204);
    assert.equal((await w.call('GET', '/v1/products/prod-a/firmware/10', f.tokens.carol)).status, 404);
  });

  it('wraps a bare JS bundle with its version, and refuses what does not match or does not fit', async () => {
    const { f } = w;
    const bundle = Buffer.from(w.image(11).subarray(52)).toString('utf8');
    const ok = await w.upload(f.tokens.erin, bundle, { version: '11' });
    assert.equal(ok.status, 201);
    assert.equal(ok.body.size, bundle.length + 52);
    const refusals: [string, Promise<{ status: number; body: any }>, number, RegExp][] = [
      ['duplicate version', w.upload(f.tokens.erin, w.image(11), { version: '11' }), 409, /already exists/],
      ['wrong product', w.upload(f.tokens.erin, buildImage(999, 12, 'x'), { version: '12' }), 400, /for product 999/],
      ['header version vs field', w.upload(f.tokens.erin, w.image(13), { version: '14' }), 400, /version 13, not 14/],
      ['empty file', w.upload(f.tokens.erin, '', { version: '15' }), 400, /empty/],
      ['bundle without a version', w.upload(f.tokens.erin, 'var x = 1;'), 400, /give its version/],
      ['oversize', w.upload(f.tokens.erin, 'x'.repeat(300001), { version: '16' }), 413, /larger than 300000/],
      // Within the upload limit, over it once the bridge adds the 52-byte header.
      ['oversize once wrapped', w.upload(f.tokens.erin, 'x'.repeat(300000 - 10), { version: '22' }), 413, /would be 300042 bytes with its header; at most 300000/],
      ['bad version', w.upload(f.tokens.erin, w.image(17), { version: 'seventeen' }), 400, /version number/],
      ['a Viewer', w.upload(f.tokens.carol, w.image(18), { version: '18' }), 403, /./],
      ['another product', w.upload(f.tokens.erin, w.image(19), { version: '19' }, 'prod-b'), 404, /./],
      // A text field sent as a list is refused, not dropped.
      ['title as a list', w.upload(f.tokens.erin, w.image(24), { version: '24', 'title[]': 'Twenty-four' }), 400, /^title must be a string$/],
    ];
    // A body that does not match its header: one byte changed after the header.
    const tampered = Uint8Array.from(w.image(20));
    tampered[tampered.length - 1] ^= 1;
    refusals.push(['body vs header SHA-256', w.upload(f.tokens.erin, tampered, { version: '20' }), 400, /does not match the SHA-256/]);
    const truncated = w.image(21).subarray(0, 1000);
    refusals.push(['header size vs file', w.upload(f.tokens.erin, truncated, { version: '21' }), 400, /header says/]);
    for (const [what, p, status, message] of refusals) {
      const r = await p;
      assert.equal(r.status, status, what + ': ' + JSON.stringify(r.body));
      assert.match(String(r.body.error), message, what);
    }
    // Particle's reference names the file `binary` (curl -F binary=@image.bin): taken as `file` is.
    const named = new FormData();
    named.set('version', '26');
    named.set('binary', new Blob([Buffer.from(w.image(26))]), 'image.bin');
    const asBinary = await fetch(w.base + '/v1/products/prod-a/firmware', { method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.erin }, body: named });
    assert.deepEqual([asBinary.status, ((await asBinary.json()) as { version: number }).version], [201, 26]);
    assert.equal((await w.call('DELETE', '/v1/products/prod-a/firmware/26', f.tokens.erin)).status, 204);
    const forged = await w.call('POST', '/v1/products/prod-a/firmware', f.tokens.erin, { binary: { path: '/etc/passwd', size: 1 }, version: 27 });
    assert.deepEqual([forged.status, forged.body.error], [400, 'Send the image as a multipart file field named file (or binary)'], 'a JSON body names no file');
    const twice = new FormData();
    twice.set('version', '25');
    twice.append('description', 'one');
    twice.append('description', 'two');
    twice.set('file', new Blob([Buffer.from(w.image(25))]), 'image.bin');
    const repeated = await fetch(w.base + '/v1/products/prod-a/firmware', { method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.erin }, body: twice });
    assert.deepEqual([repeated.status, ((await repeated.json()) as { error: string }).error], [400, 'description must be a string']);
    for (const v of [24, 25]) assert.equal((await w.call('GET', '/v1/products/prod-a/firmware/' + v, f.tokens.erin)).status, 404, 'nothing stored of version ' + v);
    const noFile = await w.call('POST', '/v1/products/prod-a/firmware', f.tokens.erin, { version: 22 });
    assert.equal(noFile.status, 400);
    // Malformed multipart: no boundary; a part cut off before its end.
    const raw = (type: string, body: string) =>
      fetch(w.base + '/v1/products/prod-a/firmware', { method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': type }, body });
    const noBoundary = await raw('multipart/form-data', 'x');
    assert.deepEqual([noBoundary.status, ((await noBoundary.json()) as any).error], [400, 'Malformed multipart body: Multipart: Boundary not found']);
    const cut = await raw('multipart/form-data; boundary=b', '--b\r\ncontent-disposition: form-data; name="file"; filename="a.js"\r\n\r\nvar a = 1;');
    assert.equal(cut.status, 400);
    assert.match(((await cut.json()) as any).error, /Malformed multipart body|multipart file field/);
    assert.deepEqual((await w.call('GET', '/v1/products/prod-a/firmware', f.tokens.erin)).body.map((x: { version: number }) => x.version), [11], 'nothing refused was kept');
  });

  it('flashes one device with a file: chunks over MQTT, reboot, hello with the new version confirmed, job done, spark/flash/status', async () => {
    const { f } = w;
    const d = await w.device();
    const form = new FormData();
    form.set('file', new Blob([Buffer.from(w.image(2))]), 'v2.flim');
    const r = await fetch(w.base + '/v1/devices/' + d.id, { method: 'PUT', headers: { authorization: 'Bearer ' + f.tokens.erin }, body: form });
    const body = (await r.json()) as any;
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.deepEqual([body.id, body.status, body.job.version, body.job.source], [d.id, 'Update started', 2, 'flash']);
    const job = await w.waitFor('the job done', async () => ((await f.bridge.store.getJob(body.job.id))?.state === 'done' ? f.bridge.store.getJob(body.job.id) : null));
    assert.deepEqual([job!.offset, job!.attempts, job!.reason], [w.image(2).length, 1, null]);
    assert.equal((await f.bridge.store.getDevice(d.id))!.firmwareVersion, 2);
    assert.equal(d.version(), 2);
    // The event follows the stored outcome: it may still be on its way.
    await w.waitFor('the last spark/flash/status', () => w.flashEvents.get(d.id)?.includes('success'));
    assert.deepEqual(w.flashEvents.get(d.id), ['started', 'progress 25%', 'progress 50%', 'progress 75%', 'success']);
    // The one-off image was the job's alone: gone with it (before, every flash left its file behind).
    // Removed after the job is stored and announced (a file-system await): waited for, bounded.
    assert.ok(isFlashPath(job!.path), job!.path);
    await w.waitFor('the one-off image removed: ' + job!.path, () => !existsSync(join(f.dir, job!.path)), 5000);
    const jobs = await w.call('GET', '/v1/products/prod-a/ota_jobs?device_id=' + d.id, f.tokens.carol);
    assert.deepEqual(jobs.body.jobs.map((j: { state: string }) => j.state), ['done']);
    // A Support member may not flash (Developer and up).
    const again = new FormData();
    again.set('file', new Blob([Buffer.from(w.image(3))]), 'v3.flim');
    assert.equal((await fetch(w.base + '/v1/devices/' + d.id, { method: 'PUT', headers: { authorization: 'Bearer ' + f.tokens.dave }, body: again })).status, 403);
    d.stop();
  });

  it('ends a job wrong_version when the new image runs but says another version (code uploaded under a version it does not say)', async () => {
    const { f } = w;
    const d = await w.device();
    // Version 8 in its header, version 9 in its code.
    const mislabelled = buildImage(w.product, 8, Buffer.from(w.image(9).subarray(52)).toString('utf8'));
    assert.equal((await w.upload(f.tokens.erin, mislabelled, { version: '8' })).status, 201);
    const job = (await w.call('PUT', '/v1/devices/' + d.id, f.tokens.erin, { firmware_version: 8 })).body.job;
    // Well within confirmTimeoutMs (30 s): at the hello of the new boot, not when the wait runs out.
    const ended = await w.waitFor('the job ended', async () => {
      const j = await f.bridge.store.getJob(job.id);
      return j && !['pending', 'sending', 'verified'].includes(j.state) && j;
    }, 15000);
    assert.deepEqual([ended.state, ended.reason], ['failed', 'wrong_version']);
    assert.equal(d.version(), 8, 'the device booted the image');
    assert.equal((await f.bridge.store.getDevice(d.id))!.firmwareVersion, 9, 'and says what its code says');
    await w.waitFor('the last spark/flash/status', () => w.flashEvents.get(d.id)?.includes('failed'));
    // Not sent again: a flash that failed is the operator's to repeat.
    await new Promise((r) => setTimeout(r, 300));
    const jobs = await w.call('GET', '/v1/products/prod-a/ota_jobs?device_id=' + d.id, f.tokens.carol);
    assert.deepEqual(jobs.body.jobs.map((j: { state: string }) => j.state), ['failed']);
    d.stop();
  });

  it('flashes by version; refuses an unknown version, an image for another product and a second file', async () => {
    const { f } = w;
    const d = await w.device();
    assert.equal((await w.upload(f.tokens.erin, w.image(4), { version: '4' })).status, 201);
    assert.equal((await w.call('PUT', '/v1/devices/' + d.id, f.tokens.erin, { firmware_version: 99 })).status, 404);
    const r = await w.call('PUT', '/v1/devices/' + d.id, f.tokens.erin, { firmware_version: 4 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await w.waitFor('version 4', async () => (await f.bridge.store.getDevice(d.id))!.firmwareVersion === 4);
    // The version it runs: refused now, rather than a job the device would fail (bad_version); by file as by version.
    const same = await w.call('PUT', '/v1/devices/' + d.id, f.tokens.erin, { firmware_version: 4 });
    assert.deepEqual([same.status, same.body.error], [409, `device ${d.id} already runs version 4`]);
    const sameFile = new FormData();
    sameFile.set('file', new Blob([Buffer.from(w.image(4))]), 'v4.flim');
    const byFile = await fetch(w.base + '/v1/devices/' + d.id, { method: 'PUT', headers: { authorization: 'Bearer ' + f.tokens.erin }, body: sameFile });
    assert.deepEqual([byFile.status, ((await byFile.json()) as { error: string }).error], [409, `device ${d.id} already runs version 4`]);
    const other = new FormData();
    other.set('file', new Blob([Buffer.from(buildImage(999, 5, 'x'))]), 'x.flim');
    const wrong = await fetch(w.base + '/v1/devices/' + d.id, { method: 'PUT', headers: { authorization: 'Bearer ' + f.tokens.erin }, body: other });
    assert.equal(wrong.status, 400);
    assert.match(((await wrong.json()) as any).error, /for product 999/);
    const two = new FormData();
    two.set('file', new Blob(['a']), 'a.js');
    two.set('file2', new Blob(['b']), 'b.js');
    const twice = await fetch(w.base + '/v1/devices/' + d.id, { method: 'PUT', headers: { authorization: 'Bearer ' + f.tokens.erin }, body: two });
    assert.equal(twice.status, 400);
    assert.match(((await twice.json()) as any).error, /one file/);
    d.stop();
  });

  it('resumes from the offset the device holds after the link drops mid-transfer', () => resumesAfterLinkDrop(w));

  it('sends the image again when a chunk reaches flash corrupted (the device refuses its SHA-256)', async () => {
    const { f } = w;
    const d = await w.device({ corruptWriteAt: 8192 });
    assert.equal((await w.upload(f.tokens.erin, w.image(6), { version: '6' })).status, 201);
    const job = (await w.call('PUT', '/v1/devices/' + d.id, f.tokens.erin, { firmware_version: 6 })).body.job;
    await w.waitFor('version 6', async () => (await f.bridge.store.getDevice(d.id))!.firmwareVersion === 6);
    const done = (await f.bridge.store.getJob(job.id))!;
    assert.deepEqual([done.state, done.attempts], ['done', 2], 'the first transfer failed its SHA-256, the second went through');
    d.stop();
  });

  it('gives up on a device that never answers, with a recorded failure', async () => {
    const { f } = w;
    const id = randomBytes(12).toString('hex');
    await f.bridge.store.createDevice({ id, productId: w.product });
    await f.bridge.store.setDeviceSecret(id, 's');
    // A device that says hello and then ignores every OTA message.
    const c = await connect(f.port, { clientId: id, username: id, password: 's', protocolVersion: 4 });
    const { encode } = await import('@flotilla/protocol');
    c.subscribe('cloud/' + id + '/#');
    await c.publishAsync('dev/' + id + '/hello', Buffer.from(encode('hello', {
      agent: '0.0.0', firmware: 1, product: w.product, variables: [], functions: [], subscriptions: [], bootReason: 'power_down', ota: { slot: 0, trial: false, rolledBackFrom: null },
    })), { qos: 1 });
    await w.waitFor('the hello', async () => (await f.bridge.store.getDevice(id))!.firmwareVersion === 1);
    const job = (await w.call('PUT', '/v1/devices/' + id, f.tokens.erin, { firmware_version: 6 })).body.job;
    const failed = await w.waitFor('the job failed', async () => {
      const j = await f.bridge.store.getJob(job.id);
      return j?.state === 'failed' ? j : null;
    });
    assert.equal(failed.reason, 'timeout');
    await w.waitFor('the last spark/flash/status', () => w.flashEvents.get(id)?.includes('failed'));
    assert.deepEqual(w.flashEvents.get(id), ['started', 'failed']);
    await c.endAsync();
  });

  it('fails the job of an image that fails its trial: the device is back on its old version', async () => {
    const { f } = w;
    const d = await w.device({ failTrial: (v) => v === 7 });
    assert.equal((await w.upload(f.tokens.erin, w.image(7), { version: '7' })).status, 201);
    const job = (await w.call('PUT', '/v1/devices/' + d.id, f.tokens.erin, { firmware_version: 7 })).body.job;
    const failed = await w.waitFor('the job failed', async () => {
      const j = await f.bridge.store.getJob(job.id);
      return j?.state === 'failed' ? j : null;
    });
    assert.equal(failed.reason, 'rolled_back');
    assert.equal((await f.bridge.store.getDevice(d.id))!.firmwareVersion, 1);
    assert.equal(d.version(), 1);
    await w.waitFor('the last spark/flash/status', () => w.flashEvents.get(d.id)?.includes('failed'));
    assert.deepEqual(w.flashEvents.get(d.id), ['started', 'progress 25%', 'progress 50%', 'progress 75%', 'failed']);
    // The crash the device reports after the rollback was version 7's: before, fleet health filed it under 1.
    const crash = await w.waitFor('the crash report', async () => {
      const health = await w.call('GET', '/v1/products/prod-a/fleet_health', f.tokens.carol);
      return (health.body.errors as { kind: string; firmware_version: number }[]).find((e) => e.kind === 'crash');
    });
    assert.equal(crash.firmware_version, 7, JSON.stringify(crash));
    d.stop();
  });
});

describe('OTA: offsets saved during a transfer', function () {
  this.timeout(60000);
  let w: OtaWorld;
  useOtaWorld((x) => (w = x));

  it('saves the offsets of transfers in progress together at each tick (0.1 s here), not per chunk', async () => {
    const { f } = w;
    // 20 ms each way: about 25 round trips of 8 chunks, a second or more, against ticks every 0.1 s.
    const d = await w.device({ latencyMs: 20 });
    assert.equal((await w.upload(f.tokens.erin, w.image(4, 200000), { version: '4' })).status, 201);
    const job = (await w.call('PUT', '/v1/devices/' + d.id, f.tokens.erin, { firmware_version: 4 })).body.job;
    const midway = await w.waitFor('an offset saved while sending', async () => {
      const j = (await f.bridge.store.getJob(job.id))!;
      return j.state === 'sending' && j.offset > 0 ? j : null;
    });
    assert.ok(midway.offset < midway.size);
    const done = await w.waitFor('the job done', async () => {
      const j = await f.bridge.store.getJob(job.id);
      return j?.state === 'done' ? j : null;
    }, 30000);
    assert.equal(done.offset, done.size);
    d.stop();
  });
});

describe('OTA: images read from disk (no image cache)', function () {
  this.timeout(60000);
  let w: OtaWorld;
  useOtaWorld((x) => (w = x), { ota: { ...TEST_OTA, imageCacheBytes: 0 } });

  it('flashes a device with chunks read from the image file, resuming after a link drop', () => resumesAfterLinkDrop(w));
});
