/**
 * Fleet releases end to end, real bridge and real agents: a release to a
 * group reaches only its devices and never a development device; the impact
 * preview counts them first; releases racing for one device resolve by
 * precedence (lock, group, default), an in-flight job the new release makes
 * unwanted is aborted; a rollout pauses past its failure threshold (trial
 * images that roll back count as failures), resumes and aborts; a bridge
 * restarted mid-rollout carries on from the database.
 */
import assert from 'node:assert/strict';
import { createBridge } from '@flotilla/bridge';
import { TEST_OTA, useOtaWorld, type OtaWorld, type TestDevice } from '../helpers/ota-world.js';

describe('OTA: fleet releases and rollouts', function () {
  this.timeout(90000);
  let w: OtaWorld;
  let d: TestDevice[];
  const version = async (x: TestDevice) => (await w.versions([x]))[0];
  const versions = (xs: TestDevice[]) => w.versions(xs);

  useOtaWorld((x) => (w = x));

  before(async () => {
    // 10 ms each way: a 200 KB transfer takes long enough to be caught in flight.
    d = await w.devices(6, { latencyMs: 10 });
    await w.f.bridge.store.regroup(w.product, [d[0].id, d[1].id, d[2].id], { add: ['beta'] });
    await w.f.bridge.store.updateDevice(d[2].id, { development: true });
    for (const v of [2, 3, 4]) assert.equal((await w.upload(w.f.tokens.erin, w.image(v, v === 3 ? 200000 : 0), { version: String(v) })).status, 201);
  });

  it('previews a release, then updates only the group, never a development device', async () => {
    const impact = await w.call('GET', '/v1/products/prod-a/impact?action=edit_groups_for_firmware&groups=beta&firmware_version=2', w.f.tokens.carol);
    assert.deepEqual(impact.body, { devices: { firmware_update: { total: 2, by_version: [{ version: 1, devices: 2 }] } } });
    assert.equal((await w.release({ version: 2, groups: ['beta'] })).status, 200);
    await w.waitFor('the group on version 2', async () => (await versions(d.slice(0, 2))).every((v) => v === 2));
    const r = (await w.call('GET', '/v1/products/prod-a/rollouts', w.f.tokens.carol)).body.rollouts[0];
    assert.deepEqual([r.version, r.groups, r.product_default, r.state, r.devices], [2, ['beta'], false, 'running', { total: 2, done: 2, failed: 0, in_progress: 0, pending: 0, aborted: 0 }]);
    // Nothing moves outside the group, nor the development device in it.
    await new Promise((res) => setTimeout(res, 300));
    assert.deepEqual(await versions(d), [2, 2, 1, 1, 1, 1]);
    const fw = (await w.call('GET', '/v1/products/prod-a/firmware/2', w.f.tokens.carol)).body;
    assert.deepEqual([fw.released, fw.product_default, fw.groups, fw.device_count], [true, false, ['beta'], 2]);
    // The group object says what the group runs (Particle's fw_version); a group without a release says null.
    const lab = await w.call('POST', '/v1/products/prod-a/groups', w.f.tokens.erin, { name: 'lab' });
    assert.equal(lab.body.group.fw_version, null);
    const groups = (await w.call('GET', '/v1/products/prod-a/groups', w.f.tokens.carol)).body.groups as { name: string; fw_version: number | null }[];
    assert.equal(groups.find((g) => g.name === 'beta')?.fw_version, 2);
    assert.equal(groups.find((g) => g.name === 'lab')?.fw_version, null, JSON.stringify(groups));
    assert.equal((await w.call('GET', '/v1/products/prod-a/groups/beta', w.f.tokens.carol)).body.group.fw_version, 2);
    assert.equal((await w.call('DELETE', '/v1/products/prod-a/firmware/2', w.f.tokens.erin)).status, 409, 'a released version stays');
    // A Viewer may look but not release; a Developer releases 2 to the whole product.
    assert.equal((await w.call('PUT', '/v1/products/prod-a/firmware/release', w.f.tokens.carol, { version: 2, product_default: true })).status, 403);
    // One device is off while the release happens: it updates when it next connects.
    d[5].vm.stop();
    await w.waitFor('d5 offline', async () => !(await w.f.bridge.store.getDevice(d[5].id))!.online);
    assert.equal((await w.release({ version: 2, product_default: true })).status, 200);
    await w.waitFor('the others on version 2', async () => (await versions(d)).join() === '2,2,1,2,2,1');
    d[5].vm.start();
    await w.waitFor('the product on version 2', async () => (await versions(d)).join() === '2,2,1,2,2,2');
  });

  it('resolves racing releases by precedence: lock, then group, then the product default; an unwanted job in flight is aborted', async () => {
    // The default moves to 3 (a big image, one device at a time); the group stays on 2.
    const r3 = await w.release({ version: 3, product_default: true, concurrency: 1 });
    assert.equal(r3.status, 200, JSON.stringify(r3.body));
    // The first device to take 3: once its transfer is under way, it joins the group (version 4 released to it below).
    const moving = await w.waitFor('a job for version 3 in flight', async () => {
      for (const x of d.slice(3)) {
        const j = await w.f.bridge.store.activeJob(x.id);
        if (j?.version === 3 && j.state === 'sending') return { x, j };
      }
      return null;
    });
    assert.equal((await w.release({ version: 4, groups: ['beta'] })).status, 200);
    assert.equal((await w.call('PUT', '/v1/products/prod-a/devices/' + moving.x.id, w.f.tokens.erin, { groups: ['beta'] })).status, 200);
    // A lock beats both: the last device is locked to 2 (which it already runs) and stays there.
    const locked = d[5] === moving.x ? d[4] : d[5];
    assert.equal((await w.call('PUT', '/v1/products/prod-a/devices/' + locked.id, w.f.tokens.erin, { desired_firmware_version: 2, flash: true })).status, 200);
    await w.waitFor('every device on its version', async () => {
      const want = d.map((x) => (x === d[2] ? 1 : x === locked ? 2 : x === moving.x || x === d[0] || x === d[1] ? 4 : 3));
      return (await versions(d)).every((v, i) => v === want[i]);
    }, 40000);
    const jobs = await w.f.bridge.store.deviceJobs(moving.x.id);
    const aborted = jobs.find((j) => j.id === moving.j.id)!;
    assert.deepEqual([aborted.state, aborted.reason], ['aborted', 'superseded']);
    assert.equal(jobs[0].version, 4);
    assert.equal(jobs[0].state, 'done');
    assert.equal(await version(d[2]), 1, 'the development device never moved');
  });
});

describe('OTA: a rollout past its failure threshold', function () {
  this.timeout(90000);
  let w: OtaWorld;
  const versions = (xs: TestDevice[]) => w.versions(xs);

  useOtaWorld((x) => (w = x));

  it('pauses a rollout past its failure threshold (trials that roll back), resumes and aborts it', async () => {
    const canary = await w.devices(6, { failTrial: (v) => v === 5 });
    await w.f.bridge.store.regroup(w.product, canary.map((x) => x.id), { add: ['canary'] });
    assert.equal((await w.upload(w.f.tokens.erin, w.image(5), { version: '5' })).status, 201);
    const r = (await w.release({ version: 5, groups: ['canary'], concurrency: 2, min_attempts: 3, failure_threshold: 10 })).body.rollout;
    assert.deepEqual([r.concurrency, r.min_attempts, r.failure_threshold], [2, 3, 10]);
    const get = () => w.rollout(r.id);
    const paused = await w.waitFor('the rollout paused', async () => {
      const x = await get();
      return x.state === 'paused' && x.devices.in_progress === 0 ? x : null;
    }, 40000);
    assert.match(paused.reason, /updates failed .* above the threshold of 10%/);
    assert.ok(paused.devices.failed >= 3 && paused.devices.pending >= 1, JSON.stringify(paused.devices));
    assert.deepEqual(new Set(await versions(canary)), new Set([1]), 'every canary is back on version 1');
    // Resume: failures count afresh, the rest is tried (and fails); aborting ends it.
    assert.equal((await w.call('PUT', '/v1/products/prod-a/rollouts/' + r.id, w.f.tokens.carol, { action: 'resume' })).status, 403);
    assert.equal((await w.call('PUT', '/v1/products/prod-a/rollouts/' + r.id, w.f.tokens.erin, { action: 'resume' })).body.state, 'running');
    const all = await w.waitFor('every canary tried', async () => {
      const x = await get();
      return x.devices.failed === 6 ? x : null;
    }, 40000);
    assert.deepEqual([all.devices.pending, all.devices.in_progress, all.devices.done], [0, 0, 0]);
    const aborted = await w.call('PUT', '/v1/products/prod-a/rollouts/' + r.id, w.f.tokens.erin, { action: 'abort' });
    assert.deepEqual([aborted.body.state, aborted.body.reason], ['aborted', 'aborted by erin']);
    assert.equal((await w.call('PUT', '/v1/products/prod-a/rollouts/' + r.id, w.f.tokens.erin, { action: 'resume' })).status, 409);
    assert.equal((await w.call('PUT', '/v1/products/prod-a/rollouts/' + r.id, w.f.tokens.erin, { action: 'go' })).status, 400);
    for (const x of canary) {
      const jobs = await w.f.bridge.store.deviceJobs(x.id);
      assert.equal(jobs.filter((j) => j.rolloutId === r.id).length, 1, 'a device that failed is not tried again by the same rollout');
      assert.equal(jobs[0].reason, 'rolled_back');
    }
  });
});

describe('OTA: a rollout aborted with a transfer in flight', function () {
  this.timeout(90000);
  let w: OtaWorld;

  useOtaWorld((x) => (w = x));

  it('answers the abort with the job in flight already ended: no device in progress, every one aborted', async () => {
    // 10 ms each way: a 200 KB transfer is long enough to be caught in flight.
    const d = await w.devices(2, { latencyMs: 10 });
    assert.equal((await w.upload(w.f.tokens.erin, w.image(2, 200000), { version: '2' })).status, 201);
    const r = (await w.release({ version: 2, product_default: true, concurrency: 1 })).body.rollout;
    const moving = await w.waitFor('a job in flight', async () => {
      for (const x of d) {
        const j = await w.f.bridge.store.activeJob(x.id);
        if (j?.state === 'sending') return j;
      }
      return null;
    });
    const aborted = await w.call('PUT', '/v1/products/prod-a/rollouts/' + r.id, w.f.tokens.erin, { action: 'abort' });
    assert.equal(aborted.status, 200);
    // Every device the rollout targeted (ours and the fixture's, offline) is aborted, none in progress.
    const n = aborted.body.devices.total;
    assert.ok(n >= 2, JSON.stringify(aborted.body.devices));
    assert.deepEqual([aborted.body.state, aborted.body.devices], ['aborted', { total: n, done: 0, failed: 0, in_progress: 0, pending: 0, aborted: n }]);
    // Ended in the store before the answer, and no other job started.
    const job = (await w.f.bridge.store.deviceJobs(moving.deviceId)).find((j) => j.id === moving.id)!;
    assert.deepEqual([job.state, job.reason], ['aborted', 'rollout aborted']);
    for (const x of d) assert.equal(await w.f.bridge.store.activeJob(x.id), null);
    assert.deepEqual((await w.rollout(r.id)).devices, aborted.body.devices);
  });

  it('a rollout superseded with a transfer in flight keeps the devices it reached as they ended in it: done, or aborted midway', async () => {
    const d = await w.devices(2, { latencyMs: 10 });
    for (const v of [3, 4]) assert.equal((await w.upload(w.f.tokens.erin, w.image(v, v === 3 ? 200000 : 0), { version: String(v) })).status, 201);
    const r3 = (await w.release({ version: 3, product_default: true, concurrency: 1 })).body.rollout;
    await w.waitFor('a job for 3 in flight', async () => {
      for (const x of d) if ((await w.f.bridge.store.activeJob(x.id))?.state === 'sending') return true;
      return false;
    });
    assert.equal((await w.release({ version: 4, product_default: true })).status, 200);
    // Superseded, 3 keeps the devices it reached as they ended in it: done, or stopped midway
    // (aborted). The devices it never reached are 4's now (before, a superseded rollout counted none).
    const after = await w.waitFor('the transfer for 3 ended', async () => {
      const x = await w.rollout(r3.id);
      return x.devices.in_progress === 0 ? x : null;
    });
    const jobs3 = [];
    for (const x of await w.f.bridge.store.listDevices(w.product)) jobs3.push(...(await w.f.bridge.store.deviceJobs(x.id)).filter((j) => j.rolloutId === r3.id));
    const done = jobs3.filter((j) => j.state === 'done').length;
    assert.deepEqual(jobs3.filter((j) => j.state !== 'done').map((j) => [j.state, j.reason]), [['aborted', 'superseded']], 'one transfer stopped midway');
    assert.deepEqual([after.state, after.devices], ['superseded', { total: done + 1, done, failed: 0, in_progress: 0, pending: 0, aborted: 1 }]);
    await w.waitFor('our devices on 4', async () => (await w.versions(d)).every((v) => v === 4), 40000);
    const r4 = (await w.call('GET', '/v1/products/prod-a/rollouts', w.f.tokens.carol)).body.rollouts.find((x: { version: number }) => x.version === 4);
    assert.equal(r4.devices.pending + r4.devices.in_progress, r4.devices.total - r4.devices.done);
    // Still 1 aborted, not 1 done: 3 never finished there, though the device has moved on.
    assert.deepEqual((await w.rollout(r3.id)).devices, after.devices);
  });
});

describe('OTA: a bridge restarted mid-rollout', function () {
  this.timeout(90000);
  let w: OtaWorld;

  useOtaWorld((x) => (w = x));

  it('carries on from the database: the rollout continues and every device ends on the new version', async () => {
    const d = await w.devices(5, { latencyMs: 10 });
    assert.equal((await w.upload(w.f.tokens.erin, w.image(2, 150000), { version: '2' })).status, 201);
    const r = await w.release({ version: 2, product_default: true, concurrency: 2 });
    assert.equal(r.status, 200);
    await w.waitFor('a device updated and jobs in flight', async () => {
      const devices = await Promise.all(d.map((x) => w.f.bridge.store.getDevice(x.id)));
      const jobs = await w.f.bridge.store.activeJobs();
      return devices.some((x) => x!.firmwareVersion === 2) && jobs.some((j) => j.state === 'sending');
    }, 40000);
    const port = w.f.port;
    await w.f.bridge.close();
    const again = await createBridge({ dataDir: w.f.dir, mqttPort: port, httpPort: 0, mqttsPort: null, logLevel: 'silent', ota: TEST_OTA });
    try {
      await w.waitFor('every device on version 2', async () => (await Promise.all(d.map(async (x) => (await again.store.getDevice(x.id))!.firmwareVersion))).every((v) => v === 2), 60000);
      const rollout = (await again.store.listRollouts(w.product))[0];
      assert.equal(rollout.state, 'running');
      const jobs = (await Promise.all(d.map((x) => again.store.deviceJobs(x.id)))).flat();
      assert.ok(jobs.every((j) => j.state === 'done' && j.rolloutId === rollout.id), JSON.stringify(jobs.map((j) => [j.state, j.reason])));
      assert.equal(jobs.length, 5, 'one job per device: the ones cut by the restart resumed');
    } finally {
      await again.close();
    }
  });
});
