/**
 * Devices through the HTTP API, driven by particle-api-js, answered by the
 * real firmware agent (the built bundle in a node:vm device) over the bridge:
 * list, get, variable read, function call; roles; offline and timeout.
 */
import assert from 'node:assert/strict';
import Particle from 'particle-api-js';
import type { VmDevice } from '@flotilla/simulator';
import { encode, topics } from '@flotilla/protocol';
import { A1, A2, B1, device, startFixture, type Fixture, startDemoAgent, type ParticleError } from '../helpers/bridge-fixture.js';

describe('HTTP API: devices', function () {
  this.timeout(30000);
  let f: Fixture;
  let base: string;
  let particle: InstanceType<typeof Particle>;
  let agent: VmDevice;

  before(async () => {
    f = await startFixture({ httpPort: 0, callTimeoutMs: 800 });
    base = 'http://127.0.0.1:' + f.bridge.ports.http;
    particle = new Particle({ baseUrl: base });
    agent = await startDemoAgent(f);
  });
  after(async () => {
    agent.stop();
    await f.close();
  });

  const refused = (p: Promise<unknown>, status: number, error: string) =>
    assert.rejects(p, (e: ParticleError & { shortErrorDescription?: string }) => {
      assert.deepEqual([e.statusCode, e.body.ok, e.body.error], [status, false, error]);
      // particle-api-js tells its caller the reason (it reads error_description only), not just "HTTP error N from <url>".
      assert.equal(e.shortErrorDescription, error);
      assert.ok(e.message.endsWith(' - ' + error), e.message);
      return true;
    });

  it('lists the devices of the products the user is on, and only those', async () => {
    const alice = await particle.listDevices({ auth: f.tokens.alice });
    const ids = (alice.body as { id: string }[]).map((d) => d.id).sort();
    assert.deepEqual(ids, [A1, A2].sort());
    const bob = await particle.listDevices({ auth: f.tokens.bob });
    assert.deepEqual((bob.body as { id: string }[]).map((d) => d.id), [B1]);
    const customer = await particle.listDevices({ auth: f.tokens.customer });
    assert.deepEqual((customer.body as { id: string }[]).map((d) => d.id), [A1], 'a customer sees the device they claimed');
  });

  it('lists a product\'s devices by id or slug, with filters, sorting and pages', async () => {
    const all = (await particle.listDevices({ product: 'prod-a', auth: f.tokens.carol })).body as unknown as { devices: { id: string }[]; meta: { total_pages: number } };
    assert.deepEqual(all.devices.map((d) => d.id).sort(), [A1, A2].sort());
    assert.equal(all.meta.total_pages, 1);
    const filtered = (await particle.listDevices({ product: f.products.A, deviceId: 'a2a2', auth: f.tokens.alice })).body as unknown as { devices: { id: string }[] };
    assert.deepEqual(filtered.devices.map((d) => d.id), [A2]);
    const paged = (await particle.listDevices({ product: f.products.A, sortAttr: 'deviceId', sortDir: 'asc', perPage: 1, page: 2, auth: f.tokens.alice })).body as unknown as { devices: { id: string }[]; meta: { total_pages: number } };
    assert.deepEqual([paged.devices.map((d) => d.id), paged.meta.total_pages], [[A2], 2]);
    // Particle's reference writes perPage and a quarantined filter (true: only those; false: none of them); both were ignored.
    const list = async (query: string) =>
      ((await (await fetch(base + '/v1/products/prod-a/devices?' + query, { headers: { authorization: 'Bearer ' + f.tokens.alice } })).json()) as { devices: { id: string }[]; meta: { total_pages: number } });
    const byPerPage = await list('perPage=1&sortAttr=deviceId&sortDir=asc');
    assert.deepEqual([byPerPage.devices.map((d) => d.id), byPerPage.meta.total_pages], [[A1], 2]);
    await f.bridge.store.updateDevice(A2, { quarantined: true });
    try {
      assert.deepEqual((await list('quarantined=true')).devices.map((d) => d.id), [A2]);
      assert.deepEqual((await list('quarantined=false')).devices.map((d) => d.id), [A1]);
      const bad = await fetch(base + '/v1/products/prod-a/devices?quarantined=maybe', { headers: { authorization: 'Bearer ' + f.tokens.alice } });
      assert.equal(bad.status, 400);
    } finally {
      await f.bridge.store.updateDevice(A2, { quarantined: false });
    }
    await refused(particle.listDevices({ product: 'prod-a', auth: f.tokens.bob }), 404, 'Product not found');
    const one = (await particle.getDevice({ deviceId: A1, product: 'prod-a', auth: f.tokens.carol })).body as unknown as { id: string };
    assert.equal(one.id, A1);
    await refused(particle.getDevice({ deviceId: A1, product: 'prod-b', auth: f.tokens.bob }), 404, 'Device not found');
  });

  it('gets a device as Particle shapes it, with online and connected', async () => {
    const d = (await particle.getDevice({ deviceId: A1, auth: f.tokens.carol })).body as unknown as Record<string, unknown>;
    assert.equal(d.id, A1);
    assert.equal(d.online, true);
    assert.equal(d.connected, true);
    assert.equal(d.product_id, Number(f.products.A));
    assert.equal(d.firmware_version, 1);
    assert.deepEqual((d.variables as Record<string, string>).temp, 'double');
    assert.ok((d.functions as string[]).includes('setLed'));
    // Where its session came from: loopback here (before, always null).
    assert.equal(d.last_ip_address, '127.0.0.1');
    await refused(particle.getDevice({ deviceId: A1, auth: f.tokens.bob }), 404, 'Device not found');
    await refused(particle.getDevice({ deviceId: 'ffffffffffffffffffffffff', auth: f.tokens.alice }), 404, 'Device not found');
    // An ID typed in capitals (copied from a label) is the same device, and the answer names it as stored.
    const upper = (await particle.getDevice({ deviceId: A1.toUpperCase(), auth: f.tokens.carol })).body as unknown as Record<string, unknown>;
    assert.equal(upper.id, A1);
    await refused(particle.getDevice({ deviceId: A1.toUpperCase(), auth: f.tokens.bob }), 404, 'Device not found');
  });

  it('reads a variable from the live device (and ?format=raw)', async () => {
    const r = await particle.getVariable({ deviceId: A1, name: 'temp', auth: f.tokens.dave });
    assert.equal((r.body as { result: number }).result, 21.5);
    const raw = await fetch(base + '/v1/devices/' + A1 + '/name?format=raw', { headers: { authorization: 'Bearer ' + f.tokens.alice } });
    // The bare value, as Particle answers it: text, no JSON quotes.
    assert.deepEqual([raw.headers.get('content-type'), await raw.text()], ['text/plain; charset=utf-8', 'kitchen']);
    await refused(particle.getVariable({ deviceId: A1, name: 'nope', auth: f.tokens.alice }), 404, 'Variable not found');
    await refused(particle.getVariable({ deviceId: A1, name: 'temp', auth: f.tokens.carol }), 403, 'Permission denied');
    await refused(particle.getVariable({ deviceId: A1, name: 'temp', auth: f.tokens.bob }), 404, 'Device not found');
  });

  it('answers HEAD as GET without a body, event streams included (nothing is held open)', async () => {
    const h = { authorization: 'Bearer ' + f.tokens.alice };
    const get = await fetch(base + '/v1/devices/' + A1, { headers: h });
    const head = await fetch(base + '/v1/devices/' + A1, { method: 'HEAD', headers: h });
    assert.deepEqual([head.status, head.headers.get('content-type'), head.headers.get('content-length'), await head.text()], [200, get.headers.get('content-type'), String((await get.text()).length), '']);
    const stream = await fetch(base + '/v1/devices/' + A1 + '/events', { method: 'HEAD', headers: h, signal: AbortSignal.timeout(3000) });
    assert.deepEqual([stream.status, stream.headers.get('content-type'), await stream.text()], [200, 'text/event-stream', '']);
    assert.equal((await fetch(base + '/v1/devices/' + A1, { method: 'HEAD', headers: { authorization: 'Bearer ' + f.tokens.bob } })).status, 404);
    assert.equal((await fetch(base + '/v1/devices/' + A1, { method: 'HEAD' })).status, 401);
  });

  it('calls a function on the live device, with args (particle-api-js) or arg (Particle\'s API)', async () => {
    const r = await particle.callFunction({ deviceId: A1, name: 'setLed', argument: 'on', auth: f.tokens.erin });
    assert.deepEqual(r.body, { id: A1, name: null, connected: true, return_value: 1 });
    const viaArg = await fetch(base + '/v1/devices/' + A1 + '/setLed', {
      method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.alice, 'content-type': 'application/x-www-form-urlencoded' }, body: 'arg=off',
    });
    assert.equal(((await viaArg.json()) as { return_value: number }).return_value, 0);
    const raw = await fetch(base + '/v1/devices/' + A1 + '/setLed', {
      method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.alice, 'content-type': 'application/x-www-form-urlencoded' }, body: 'arg=on&format=raw',
    });
    assert.equal(await raw.text(), '1', 'format=raw: the bare return value');
    await refused(particle.callFunction({ deviceId: A1, name: 'boom', argument: '', auth: f.tokens.alice }), 400, 'kaboom');
    await refused(particle.callFunction({ deviceId: A1, name: 'nope', argument: '', auth: f.tokens.alice }), 404, 'Function not found');
    await refused(particle.callFunction({ deviceId: A1, name: 'setLed', argument: 'on', auth: f.tokens.carol }), 403, 'Permission denied');
  });

  it('renames a device, edits its notes, signals and pings it, by role', async () => {
    const renamed = await particle.renameDevice({ deviceId: A1, name: 'kitchen-sensor', auth: f.tokens.erin });
    assert.equal((renamed.body as { name: string }).name, 'kitchen-sensor');
    await particle.setDeviceNotes({ deviceId: A1, notes: 'by the window', auth: f.tokens.erin });
    const d = (await particle.getDevice({ deviceId: A1, auth: f.tokens.alice })).body as unknown as { name: string; notes: string };
    assert.deepEqual([d.name, d.notes], ['kitchen-sensor', 'by the window']);
    // A name stands for the device while one device the caller sees goes by it; with two, the ID is needed, and the answer names both.
    assert.equal(((await particle.getDevice({ deviceId: 'kitchen-sensor', auth: f.tokens.alice })).body as unknown as { id: string }).id, A1);
    await particle.renameDevice({ deviceId: A2, name: 'kitchen-sensor', auth: f.tokens.alice });
    await refused(particle.getDevice({ deviceId: 'kitchen-sensor', auth: f.tokens.alice }), 400, `2 devices you can see are named "kitchen-sensor" (${[A1, A2].sort().join(', ')}): give the device ID`);
    await particle.renameDevice({ deviceId: A2, name: '', auth: f.tokens.alice });
    await refused(particle.renameDevice({ deviceId: A1, name: 'x', auth: f.tokens.dave }), 403, 'Permission denied');
    await refused(particle.renameDevice({ deviceId: A1, name: 'x'.repeat(65), auth: f.tokens.alice }), 400, 'a device name is longer than 64 characters');
    const signal = await particle.signalDevice({ deviceId: A1, signal: true, auth: f.tokens.dave });
    assert.deepEqual(signal.body, { id: A1, connected: true, signaling: true });
    const ping = await fetch(base + '/v1/devices/' + A1 + '/ping', { method: 'PUT', headers: { authorization: 'Bearer ' + f.tokens.dave } });
    assert.deepEqual(await ping.json(), { online: true, ok: true });
    const viewerPing = await fetch(base + '/v1/devices/' + A1 + '/ping', { method: 'PUT', headers: { authorization: 'Bearer ' + f.tokens.carol } });
    assert.equal(viewerPing.status, 403);
  });

  it('answers 404 for an offline device and 408 for one that does not answer', async () => {
    // a2 said hello once and went away: offline.
    const a2 = await device(f.port, A2);
    const hello = encode('hello', { agent: '0', firmware: 1, product: 1, variables: [{ name: 'v', type: 'int32' }], functions: [], subscriptions: [], bootReason: 'none', ota: { slot: 0, trial: false, rolledBackFrom: null } });
    await a2.publishAsync(topics.device.hello(A2), Buffer.from(hello), { qos: 1 });
    a2.end(true);
    for (let i = 0; i < 50 && (await f.bridge.store.getDevice(A2))?.online; i++) await new Promise((r) => setTimeout(r, 20));
    await refused(particle.getVariable({ deviceId: A2, name: 'v', auth: f.tokens.alice }), 404, 'Device is not connected');
    // Back online, but it never answers: 408 after callTimeoutMs.
    const silent = await device(f.port, A2);
    await silent.publishAsync(topics.device.hello(A2), Buffer.from(hello), { qos: 1 });
    await refused(particle.getVariable({ deviceId: A2, name: 'v', auth: f.tokens.alice }), 408, 'Timed out.');
    silent.end(true);
  });
});
