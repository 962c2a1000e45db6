/**
 * Rollouts under the things fleets do, real bridge and real agents: a version
 * released to a group and then as the product default (the newer release's
 * settings rule, the older rollout keeps what it reached; transfers under way
 * pass to the newer rollout); a device that goes
 * away mid-transfer (its slot goes to another device after offlineSlotMs, its
 * job resumes when it is back, still the same attempt); a lock applied with
 * flash to the version the device runs (nothing sent, and the lock holds
 * later); an update stopped after it started (spark/flash/status ends it); a
 * rollout aborted while a device resets into its verified image (not stopped:
 * it cannot be); a device whose link drops while its hello is being handled
 * (not sent an update); a device that confirms its image after the bridge
 * stopped waiting (the job ends done after all); a device flashed by hand
 * while its release's rollout is paused (put back on resume) or aborted (left).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { encode } from '@flotilla/protocol';
import { connect } from '../helpers/bridge-fixture.js';
import { TEST_OTA, useOtaWorld, type OtaWorld, type TestDevice } from '../helpers/ota-world.js';

const runs = async (w: OtaWorld, x: TestDevice) => (await w.versions([x]))[0];

describe('OTA: a version released to a group, then as the product default', function () {
  this.timeout(90000);
  let w: OtaWorld;
  useOtaWorld((x) => (w = x));

  it('supersedes the group\'s rollout: the default\'s concurrency rules, and the group\'s rollout keeps the device it reached', async () => {
    // 10 ms each way and a 100 KB image: transfers long enough to overlap if two were allowed.
    const d = await w.devices(4, { latencyMs: 10 });
    await w.f.bridge.store.regroup(w.product, [d[0].id], { add: ['beta'] });
    assert.equal((await w.upload(w.f.tokens.erin, w.image(2, 100000), { version: '2' })).status, 201);
    const r1 = (await w.release({ version: 2, groups: ['beta'] })).body.rollout;
    await w.waitFor('the group on version 2', async () => (await runs(w, d[0])) === 2);
    const r2 = (await w.release({ version: 2, product_default: true, concurrency: 1 })).body.rollout;
    assert.equal((await w.rollout(r1.id)).state, 'superseded', 'a release of a version covers every rollout of that version');
    // One transfer at a time, all of them the default's: the group's rollout (concurrency 50) took them before.
    let most = 0;
    await w.waitFor('the rest on version 2', async () => {
      most = Math.max(most, (await w.f.bridge.store.activeJobs()).filter((j) => j.version === 2).length);
      return (await w.versions(d)).every((v) => v === 2);
    }, 60000);
    assert.equal(most, 1, 'the concurrency of the newer release');
    for (const x of d.slice(1)) assert.deepEqual((await w.f.bridge.store.deviceJobs(x.id)).map((j) => [j.rolloutId, j.state]), [[r2.id, 'done']]);
    // The group's rollout keeps the one device it reached, done; not the fleet that runs 2 since.
    assert.deepEqual((await w.rollout(r1.id)).devices, { total: 1, done: 1, failed: 0, in_progress: 0, pending: 0, aborted: 0 });
    const now = (await w.rollout(r2.id)).devices;
    assert.ok(now.done >= 4 && now.in_progress === 0, JSON.stringify(now));
  });
});

describe('OTA: a version released more widely while its transfers are under way', function () {
  this.timeout(90000);
  let w: OtaWorld;
  useOtaWorld((x) => (w = x));

  it('gives the transfers under way to the newer rollout: counted in its concurrency, ended by its abort', async () => {
    const d = await w.devices(4, { latencyMs: 10 });
    await w.f.bridge.store.regroup(w.product, [d[0].id, d[1].id], { add: ['beta'] });
    assert.equal((await w.upload(w.f.tokens.erin, w.image(2, 200000), { version: '2' })).status, 201);
    const r1 = (await w.release({ version: 2, groups: ['beta'], concurrency: 2 })).body.rollout;
    await w.waitFor('both group transfers under way', async () => (await w.f.bridge.store.activeJobs()).filter((j) => j.state === 'sending').length === 2);
    const r2 = (await w.release({ version: 2, product_default: true, concurrency: 1 })).body.rollout;
    const moved = (await w.f.bridge.store.activeJobs()).filter((j) => j.version === 2);
    assert.deepEqual(moved.map((j) => j.rolloutId), [r2.id, r2.id], 'the jobs under way are the newer rollout\'s');
    // Two in flight against a concurrency of 1: nothing more starts until they are down to none.
    let most = 0;
    for (let i = 0; i < 20; i++) {
      most = Math.max(most, (await w.f.bridge.store.activeJobs()).filter((j) => j.version === 2).length);
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(most, 2);
    // Its abort ends them (before, they went on under the superseded rollout, which could not be aborted: 409).
    const aborted = await w.call('PUT', '/v1/products/prod-a/rollouts/' + r2.id, w.f.tokens.erin, { action: 'abort' });
    assert.equal(aborted.status, 200);
    for (const j of moved) assert.equal((await w.f.bridge.store.getJob(j.id))!.state, 'aborted');
    assert.deepEqual(await w.f.bridge.store.activeJobs(), []);
    assert.equal((await w.call('PUT', '/v1/products/prod-a/rollouts/' + r1.id, w.f.tokens.erin, { action: 'abort' })).status, 409);
  });
});

describe('OTA: a device that goes away mid-transfer', function () {
  this.timeout(90000);
  let w: OtaWorld;
  useOtaWorld((x) => (w = x));

  it('gives its rollout slot to another device after offlineSlotMs, and resumes its job when it is back, as the same attempt', async () => {
    const d = await w.devices(2, { latencyMs: 10 });
    assert.equal((await w.upload(w.f.tokens.erin, w.image(2, 200000), { version: '2' })).status, 201);
    const r = (await w.release({ version: 2, product_default: true, concurrency: 1 })).body.rollout;
    const moving = await w.waitFor('a transfer under way', async () => {
      for (const x of d) {
        const j = await w.f.bridge.store.activeJob(x.id);
        if (j?.state === 'sending' && j.offset >= 20000) return { x, j };
      }
      return null;
    });
    const other = d.find((x) => x !== moving.x)!;
    moving.x.vm.stop();
    const off = Date.now();
    // Before, the slot stayed with the device that went away: the other one waited for it for good.
    await w.waitFor('the other device on version 2', async () => (await runs(w, other)) === 2, 30000);
    assert.ok(Date.now() - off >= TEST_OTA!.offlineSlotMs! - 100, 'not before the device had its offlineSlotMs to come back');
    assert.equal((await w.f.bridge.store.getJob(moving.j.id))!.state, 'sending', 'the job waits for its device');
    moving.x.vm.start();
    await w.waitFor('the device back and on version 2', async () => (await runs(w, moving.x)) === 2, 30000);
    const jobs = await w.f.bridge.store.deviceJobs(moving.x.id);
    assert.deepEqual(jobs.map((j) => [j.id, j.state, j.attempts]), [[moving.j.id, 'done', 1]], 'resumed, not started again; the transfer had moved on, so not a new attempt');
    await w.waitFor('the last spark/flash/status', () => w.flashEvents.get(moving.x.id)?.includes('success'));
    assert.deepEqual(w.flashEvents.get(moving.x.id)!.filter((e) => !e.startsWith('progress')), ['started', 'success']);
    const p = (await w.rollout(r.id)).devices;
    assert.equal(p.in_progress, 0, JSON.stringify(p));
  });
});

describe('OTA: a device gone while its hello is stored', function () {
  this.timeout(90000);
  let w: OtaWorld;
  useOtaWorld((x) => (w = x));

  /** A device of product A on a raw MQTT client, which says hello (running version 1) on each `link()`. */
  async function rawDevice() {
    const id = randomBytes(12).toString('hex');
    await w.f.bridge.store.createDevice({ id, productId: w.product });
    await w.f.bridge.store.setDeviceSecret(id, 's');
    const hello = Buffer.from(encode('hello', {
      agent: '0.0.0', firmware: 1, product: w.product, variables: [], functions: [], subscriptions: [], bootReason: 'power_down', ota: { slot: 0, trial: false, rolledBackFrom: null },
    }));
    const link = async (qos: 0 | 1) => {
      const c = await connect(w.f.port, { clientId: id, username: id, password: 's' });
      await c.publishAsync('dev/' + id + '/hello', hello, { qos });
      return c;
    };
    return { id, link };
  }

  /** Its next connection takes the update (the release stands). */
  async function takesUpdateWhenBack(d: Awaited<ReturnType<typeof rawDevice>>) {
    const back = await d.link(1);
    await w.waitFor('a job for the device back', async () => (await w.f.bridge.store.deviceJobs(d.id)).length === 1);
    await back.endAsync();
  }

  it('is not sent an update: the late hello does not mark it connected, and its next connection is', async () => {
    const store = w.f.bridge.store;
    assert.equal((await w.upload(w.f.tokens.erin, w.image(2), { version: '2' })).status, 201);
    assert.equal((await w.release({ version: 2, product_default: true })).status, 200);
    const d = await rawDevice();
    // The store takes its time to say this device's hello is written (a busy disk): the link drops meanwhile.
    const recordHello = store.recordHello.bind(store);
    let slow = true;
    let stored = 0;
    store.recordHello = async (deviceId, h, at) => {
      await recordHello(deviceId, h, at);
      if (deviceId === d.id && slow) await new Promise((r) => setTimeout(r, 300));
      if (deviceId === d.id) stored++;
    };
    const gone = await d.link(0);
    await w.waitFor('the hello taken', () => w.f.bridge.broker.context.subscriptions.has(d.id));
    gone.stream.destroy();
    await w.waitFor('the hello stored', () => stored === 1);
    // Long enough for a transfer to a device that is not there to start, and give up (2 silences of 400 ms).
    await new Promise((r) => setTimeout(r, 1500));
    // Before, the late hello marked it connected: an update started, sent to nobody, and failed as a timeout.
    assert.deepEqual(await store.deviceJobs(d.id), []);
    assert.equal(w.flashEvents.get(d.id), undefined);
    assert.equal((await store.getDevice(d.id))!.online, false);
    slow = false;
    await takesUpdateWhenBack(d);
  });

  it('is not sent an update when the link drops while OTA delivery looks the device up', async () => {
    const store = w.f.bridge.store;
    const d = await rawDevice();
    const deviceTarget = store.deviceTarget.bind(store);
    let slow = true;
    let looked = 0;
    store.deviceTarget = async (deviceId) => {
      const t = await deviceTarget(deviceId);
      if (deviceId === d.id && slow) {
        looked++;
        await new Promise((r) => setTimeout(r, 300));
      }
      return t;
    };
    const gone = await d.link(1);
    await w.waitFor('OTA delivery looking the device up', () => looked === 1);
    gone.stream.destroy();
    await new Promise((r) => setTimeout(r, 1800));
    // Before, the hello went on once the lookup was back: the device was taken as connected, and a job started for nobody.
    assert.deepEqual(await store.deviceJobs(d.id), []);
    assert.equal(w.flashEvents.get(d.id), undefined);
    slow = false;
    await takesUpdateWhenBack(d);
  });
});

describe('OTA: locks and stopped updates', function () {
  this.timeout(90000);
  let w: OtaWorld;
  useOtaWorld((x) => (w = x));

  before(async () => {
    for (const v of [1, 3]) assert.equal((await w.upload(w.f.tokens.erin, w.image(v), { version: String(v) })).status, 201);
    assert.equal((await w.upload(w.f.tokens.erin, w.image(4, 200000), { version: '4' })).status, 201);
  });

  it('a lock with flash to the version the device runs sends nothing, and still brings the device back after another flash', async () => {
    const d = await w.device();
    const lock = await w.call('PUT', '/v1/products/prod-a/devices/' + d.id, w.f.tokens.erin, { desired_firmware_version: 1, flash: true });
    assert.equal(lock.status, 200, JSON.stringify(lock.body));
    assert.equal(lock.body.desired_firmware_version, 1);
    // Before, a job was sent that the device refused (bad_version); failed, it kept the lock from being applied again.
    assert.deepEqual(await w.f.bridge.store.deviceJobs(d.id), []);
    assert.equal((await w.call('PUT', '/v1/products/prod-a/devices/' + d.id, w.f.tokens.erin, { firmware_version: 3 })).status, 200);
    const back = await w.waitFor('the lock applied after the one-off flash', async () => {
      const jobs = await w.f.bridge.store.deviceJobs(d.id);
      return jobs[0]?.source === 'lock' && jobs[0].state === 'done' ? jobs : null;
    });
    assert.deepEqual(back.map((j) => [j.source, j.version, j.state]), [['lock', 1, 'done'], ['flash', 3, 'done']]);
    assert.equal(await runs(w, d), 1);
    assert.equal(d.version(), 1);
  });

  it('an update stopped after it started ends with failed in spark/flash/status, before the next one starts', async () => {
    const d = await w.device({ latencyMs: 10 });
    const first = (await w.call('PUT', '/v1/products/prod-a/devices/' + d.id, w.f.tokens.erin, { firmware_version: 4 })).body.job;
    await w.waitFor('the first transfer under way', async () => ((await w.f.bridge.store.getJob(first.id))!.offset ?? 0) > 0);
    assert.equal((await w.call('PUT', '/v1/products/prod-a/devices/' + d.id, w.f.tokens.erin, { firmware_version: 3 })).status, 200);
    await w.waitFor('version 3', async () => (await runs(w, d)) === 3);
    assert.deepEqual([(await w.f.bridge.store.getJob(first.id))!.state, (await w.f.bridge.store.getJob(first.id))!.reason], ['aborted', 'superseded']);
    await w.waitFor('success', () => w.flashEvents.get(d.id)?.includes('success'));
    assert.deepEqual(w.flashEvents.get(d.id)!.filter((e) => !e.startsWith('progress')), ['started', 'failed', 'started', 'success']);
  });

  it('a rollout aborted while a device resets into its verified image leaves that job to end as it will: done, when the device comes back running it', async () => {
    const d = await w.device({ rebootDelay: 1500 });
    const r = (await w.release({ version: 3, product_default: true })).body.rollout;
    const job = await w.waitFor('the image verified', async () => {
      const j = await w.f.bridge.store.activeJob(d.id);
      return j?.state === 'verified' ? j : null;
    });
    const aborted = await w.call('PUT', '/v1/products/prod-a/rollouts/' + r.id, w.f.tokens.erin, { action: 'abort' });
    assert.equal(aborted.body.state, 'aborted');
    // Before, the job was marked aborted while the device was already resetting into the image.
    assert.equal(aborted.body.devices.in_progress, 1, JSON.stringify(aborted.body.devices));
    await w.waitFor('version 3', async () => (await runs(w, d)) === 3);
    assert.deepEqual([(await w.f.bridge.store.getJob(job.id))!.state, d.version()], ['done', 3]);
    const after = (await w.rollout(r.id)).devices;
    assert.deepEqual([after.done, after.in_progress], [aborted.body.devices.done + 1, 0], JSON.stringify(after));
  });
});

describe('OTA: a device that confirms its image after the bridge stopped waiting', function () {
  this.timeout(60000);
  let w: OtaWorld;
  // The wait for the new image's hello (1 s) runs out while the device is dark (2.5 s).
  useOtaWorld((x) => (w = x), { ota: { ...TEST_OTA, confirmTimeoutMs: 1000 } });

  it('ends its job done, not not_confirmed, and its rollout counts it done', async () => {
    assert.equal((await w.upload(w.f.tokens.erin, w.image(3), { version: '3' })).status, 201);
    const d = await w.device({ rebootDelay: 2500 });
    const r = (await w.release({ version: 3, product_default: true })).body.rollout;
    const job = await w.waitFor('the image verified', async () => {
      const j = await w.f.bridge.store.activeJob(d.id);
      return j?.state === 'verified' ? j : null;
    });
    const timedOut = await w.waitFor('the wait ended', async () => {
      const j = (await w.f.bridge.store.getJob(job.id))!;
      return j.state === 'failed' ? j : null;
    });
    assert.equal(timedOut.reason, 'not_confirmed');
    assert.equal((await w.rollout(r.id)).devices.failed, 1);
    // Back on version 3, past its trial: before, the job stayed failed and the rollout counted a failure.
    await w.waitFor('version 3', async () => (await runs(w, d)) === 3);
    const ended = await w.waitFor('the job done', async () => {
      const j = (await w.f.bridge.store.getJob(job.id))!;
      return j.state === 'done' ? j : null;
    });
    assert.deepEqual([ended.reason, ended.offset, d.version()], [null, ended.size, 3]);
    const devices = (await w.rollout(r.id)).devices;
    assert.deepEqual([devices.done, devices.failed], [1, 0], JSON.stringify(devices));
    await w.waitFor('success', () => w.flashEvents.get(d.id)?.includes('success'));
    assert.deepEqual(w.flashEvents.get(d.id)!.filter((e) => !e.startsWith('progress')), ['started', 'failed', 'success']);
    // Nothing sent again: the device runs the rollout's version.
    await new Promise((res) => setTimeout(res, 300));
    assert.deepEqual((await w.f.bridge.store.deviceJobs(d.id)).map((j) => j.state), ['done']);
  });
});

describe('OTA: a device flashed by hand while its release\'s rollout is paused or aborted', function () {
  this.timeout(60000);
  let w: OtaWorld;
  useOtaWorld((x) => (w = x));

  it('is put back to the release when the rollout resumes; an aborted rollout leaves it alone', async () => {
    for (const v of [1, 3]) assert.equal((await w.upload(w.f.tokens.erin, w.image(v), { version: String(v) })).status, 201);
    const d = await w.device();
    const r = (await w.release({ version: 3, product_default: true })).body.rollout;
    await w.waitFor('version 3', async () => (await runs(w, d)) === 3);
    const act = (action: string) => w.call('PUT', '/v1/products/prod-a/rollouts/' + r.id, w.f.tokens.erin, { action });
    const flashBack = async () => {
      assert.equal((await w.call('PUT', '/v1/devices/' + d.id, w.f.tokens.erin, { firmware_version: 1 })).status, 200);
      await w.waitFor('version 1', async () => (await runs(w, d)) === 1);
      await new Promise((res) => setTimeout(res, 500)); // five ticks
      assert.equal(await runs(w, d), 1, 'left on the flashed version');
    };
    assert.equal((await act('pause')).body.state, 'paused');
    await flashBack();
    assert.equal((await act('resume')).body.state, 'running');
    await w.waitFor('version 3 again', async () => (await runs(w, d)) === 3);
    assert.equal((await act('abort')).body.state, 'aborted');
    await flashBack();
    assert.deepEqual((await w.f.bridge.store.deviceJobs(d.id)).map((j) => [j.source, j.version, j.state]), [
      ['flash', 1, 'done'], ['release', 3, 'done'], ['flash', 1, 'done'], ['release', 3, 'done'],
    ]);
  });
});
