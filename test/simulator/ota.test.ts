/**
 * The scenario's OTA behaviour on a fleet, with images sent over the
 * protocol as the bridge will send them (test/helpers/ota-sender.ts, on a
 * bare broker; delivery by the bridge is the OTA issue's): a device takes
 * the image, boots it and counts as updated; one whose new image fails its
 * trial is rolled back and counted; one that refuses says so at begin.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Fleet, fleetImage, parseScenario, statusLine } from '@flotilla/simulator';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { TestCloud } from '../helpers/test-cloud.js';
import { sendImage } from '../helpers/ota-sender.js';

const PRODUCT = 7;
const base = { variables: { temperature: { type: 'double', value: 20 } }, functions: { setLed: { returns: 1 } } };
const v2 = fleetImage(parseScenario({ ...base, firmware: 2, functions: { setLed: { returns: 1 }, newTrick: { returns: 2 } } }, 'v2'), PRODUCT);

describe('simulator: OTA behaviour of a scenario', function () {
  this.timeout(60_000);
  let broker: TestBroker;
  let cloud: TestCloud;
  const fleets: Fleet[] = [];

  before(async () => {
    broker = await startBroker();
    cloud = await TestCloud.connect(broker.port);
  });
  afterEach(() => {
    for (const f of fleets.splice(0)) f.stop();
  });
  after(async () => {
    await cloud.client.endAsync();
    await broker.close();
  });

  async function oneDevice(ota: { refuse?: number; failTrial?: number }): Promise<{ fleet: Fleet; id: string }> {
    const id = randomBytes(12).toString('hex');
    const fleet = new Fleet({ bridge: 'mqtt://127.0.0.1:' + broker.port, product: PRODUCT, devices: [{ id, secret: 's' }], scenario: parseScenario({ ...base, ota }, 'ota') });
    fleets.push(fleet);
    await fleet.start();
    await cloud.kind(id, 'hello', 10_000);
    return { fleet, id };
  }

  it('a device takes the image, boots it and counts as updated; the live line says so', async () => {
    const { fleet, id } = await oneDevice({});
    const before = { stats: fleet.stats(), at: performance.now(), rss: 0 };
    const done = await sendImage(cloud, id, v2, { job: 1, product: PRODUCT, version: 2 });
    assert.equal(done.state, 'verified');
    const hello = await cloud.kind(id, 'hello', 15_000, (m) => m.firmware === 2);
    assert.equal(hello.bootReason, 'update');
    assert.equal((await cloud.request(id, { op: 'call', name: 'newTrick', arg: '' })).value, 2);
    assert.ok(await fleet.until((s) => s.ota.updated === 1, 5000));
    const s = fleet.stats();
    assert.deepEqual([s.versions, s.ota.rolledBack], [{ 2: 1 }, 0]);
    assert.ok(s.received.ota! > 0, 'OTA messages counted on the wire');
    assert.match(statusLine(before, { stats: s, at: performance.now(), rss: 0 }), /ota 1 receiving, 1 updated, 0 rolled back/);
  });

  it('a new image that fails its trial is rolled back, and the device says so on its next hello', async () => {
    const { fleet, id } = await oneDevice({ failTrial: 1 });
    const done = await sendImage(cloud, id, v2, { job: 2, product: PRODUCT, version: 2 });
    assert.equal(done.state, 'verified');
    const back = await cloud.kind(id, 'hello', 15_000, (m) => m.ota.rolledBackFrom === 2);
    assert.deepEqual([back.firmware, back.ota.slot, back.ota.trial], [1, 0, false]);
    assert.ok(await fleet.until((s) => s.ota.rolledBack === 1, 5000));
    assert.deepEqual([fleet.stats().versions, fleet.stats().ota.updated], [{ 1: 1 }, 0]);
  });

  it('a device that refuses updates answers begin with a failure', async () => {
    const { fleet, id } = await oneDevice({ refuse: 1 });
    const done = await sendImage(cloud, id, v2, { job: 3, product: PRODUCT, version: 2 });
    assert.deepEqual([done.state, done.reason], ['failed', 'busy']);
    assert.deepEqual(fleet.stats().versions, { 1: 1 });
  });
});
