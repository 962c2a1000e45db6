/**
 * Event streams (SSE) through the HTTP API, opened with particle-api-js:
 * Particle's wire format, scopes (mine, device, product), prefixes,
 * spark/status, keepalives, and each stream seeing only what its token may.
 */
import assert from 'node:assert/strict';
import { connect as tcp } from 'node:net';
import Particle from 'particle-api-js';
import { encode, LIMITS, topics } from '@flotilla/protocol';
import { defaultOptions } from '../../bridge/src/bridge.js';
import { A1, B1, app, closed, device, startFixture, type Fixture } from '../helpers/bridge-fixture.js';
import { openStream, type OpenStream } from '../helpers/sse.js';

interface StreamEvent {
  name: string;
  data: string;
  ttl: number;
  published_at: string;
  coreid: string;
}

describe('HTTP API: event streams', function () {
  this.timeout(20000);
  let f: Fixture;
  let base: string;
  let particle: InstanceType<typeof Particle>;
  const streams: { abort(): void }[] = [];

  before(async () => {
    f = await startFixture({ httpPort: 0, sseKeepaliveMs: 200 });
    base = 'http://127.0.0.1:' + f.bridge.ports.http;
    particle = new Particle({ baseUrl: base });
  });
  after(async () => {
    for (const s of streams) s.abort();
    await f.close();
  });

  /** Opens a stream with particle-api-js; collects its events. */
  async function open(opts: Record<string, string>): Promise<StreamEvent[]> {
    const stream = (await particle.getEventStream(opts as never)) as unknown as { on(e: string, f: (x: StreamEvent) => void): void; abort(): void };
    streams.push(stream);
    const got: StreamEvent[] = [];
    stream.on('event', (e) => got.push(e));
    return got;
  }

  const event = (data: string) => Buffer.from(encode('event', { data, ttl: 60 }));
  const settle = () => new Promise((r) => setTimeout(r, 250));

  it('streams a device\'s events in Particle\'s format to whoever may see them, and to no one else', async () => {
    const alice = await open({ deviceId: 'mine', auth: f.tokens.alice });
    const bob = await open({ deviceId: 'mine', auth: f.tokens.bob });
    const a1 = await device(f.port, A1);
    await a1.publishAsync(topics.device.event(A1, 'temp'), event('21.5'), { qos: 1 });
    await settle();
    const temp = alice.find((e) => e.name === 'temp');
    assert.ok(temp, 'alice got temp');
    assert.deepEqual([temp.data, temp.ttl, temp.coreid], ['21.5', 60, A1]);
    assert.ok(!Number.isNaN(Date.parse(temp.published_at)));
    assert.ok(alice.some((e) => e.name === 'spark/status' && e.data === 'online' && e.coreid === A1), 'spark/status online');
    assert.deepEqual(bob.filter((e) => e.coreid === A1), [], 'bob got nothing of a1');
    a1.end(true);
  });

  it('filters by device, product (id or slug) and name prefix', async () => {
    const devStream = await open({ deviceId: A1, name: 'alert', auth: f.tokens.carol });
    const product = await open({ product: 'prod-a', auth: f.tokens.dave });
    const a1 = await device(f.port, A1);
    const b1 = await device(f.port, B1);
    await a1.publishAsync(topics.device.event(A1, 'alert/fire'), event('hot'), { qos: 1 });
    await a1.publishAsync(topics.device.event(A1, 'temp'), event('1'), { qos: 1 });
    await b1.publishAsync(topics.device.event(B1, 'alert/fire'), event('other product'), { qos: 1 });
    await settle();
    assert.deepEqual(devStream.map((e) => [e.name, e.data]), [['alert/fire', 'hot']]);
    assert.deepEqual(product.filter((e) => !e.name.startsWith('spark/')).map((e) => e.name), ['alert/fire', 'temp']);
    a1.end(true);
    b1.end(true);
  });

  it('holds back the events of a quarantined device from streams and apps (its spark/status still goes), until it is released', async () => {
    const put = (quarantined: boolean) =>
      fetch(base + '/v1/products/prod-a/devices/' + A1, { method: 'PUT', headers: { authorization: 'Bearer ' + f.tokens.alice, 'content-type': 'application/json' }, body: JSON.stringify({ quarantined }) });
    assert.equal((await put(true)).status, 200);
    const stream = await open({ product: 'prod-a', auth: f.tokens.dave });
    const watcher = await app(f.port, 'q-watch', f.tokens.alice);
    const seenByApp: string[] = [];
    watcher.on('message', (t) => seenByApp.push(t));
    await watcher.subscribeAsync(topics.filter.deviceEvents(), { qos: 1 });
    const a1 = await device(f.port, A1);
    try {
      await a1.publishAsync(topics.device.event(A1, 'held'), event('1'), { qos: 1 });
      await settle();
      // Before, the flag was only stored: both got it.
      assert.deepEqual(stream.filter((e) => e.coreid === A1).map((e) => e.name), ['spark/status']);
      assert.deepEqual(seenByApp, [topics.device.event(A1, 'spark/status')]);
      assert.equal((await put(false)).status, 200);
      await a1.publishAsync(topics.device.event(A1, 'released'), event('2'), { qos: 1 });
      await settle();
      assert.deepEqual(stream.filter((e) => e.coreid === A1).map((e) => e.name), ['spark/status', 'released']);
      assert.ok(seenByApp.includes(topics.device.event(A1, 'released')));
    } finally {
      a1.end(true);
      watcher.end(true);
    }
  });

  it('adds Particle\'s userid, version, public and productID to the events of product streams, the version of the device\'s last hello', async () => {
    const product = await open({ product: 'prod-a', name: 'fw', auth: f.tokens.dave });
    const device1 = await open({ deviceId: A1, name: 'fw', auth: f.tokens.carol });
    // particle subscribe --product P --device D: the device's stream under the product's path.
    const productDevice = await open({ product: 'prod-a', deviceId: A1, name: 'fw', auth: f.tokens.carol });
    const a1 = await device(f.port, A1);
    const hello = encode('hello', { agent: '0', firmware: 7, product: Number(f.products.A), variables: [], functions: [], subscriptions: [], bootReason: 'pin_reset', ota: { slot: 0, trial: false, rolledBackFrom: null } });
    await a1.publishAsync(topics.device.hello(A1), Buffer.from(hello), { qos: 1 });
    await a1.publishAsync(topics.device.event(A1, 'fw'), event('x'), { qos: 1 });
    assert.equal((await fetch(base + '/v1/products/prod-a/events', { method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.alice, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'fw-api', data: 'y' }) })).status, 200);
    await settle();
    a1.end(true);
    const fields = (e: StreamEvent | undefined) => e && Object.fromEntries(['coreid', 'userid', 'version', 'public', 'productID'].map((k) => [k, (e as unknown as Record<string, unknown>)[k]]));
    const owner = (await f.bridge.store.getDevice(A1))!;
    assert.deepEqual(fields(product.find((e) => e.name === 'fw')), { coreid: A1, userid: owner.ownerUserId ?? owner.customerId, version: 7, public: false, productID: Number(f.products.A) });
    assert.deepEqual(fields(product.find((e) => e.name === 'fw-api')), { coreid: 'api', userid: null, version: null, public: false, productID: Number(f.products.A) });
    assert.deepEqual(fields(productDevice.find((e) => e.name === 'fw')), fields(product.find((e) => e.name === 'fw')));
    // A device's own stream keeps Particle's plain fields.
    assert.deepEqual(fields(device1.find((e) => e.name === 'fw')), { coreid: A1, userid: undefined, version: undefined, public: undefined, productID: undefined });
    // One event, one time on every stream that shows it (each stream's line took its own clock: apps de-duplicating by it saw two).
    const at = [product, device1, productDevice].map((got) => got.find((e) => e.name === 'fw')!.published_at);
    assert.deepEqual(new Set(at).size, 1, JSON.stringify(at));
  });

  it('refuses a stream of a device or product the token has no role on, and /v1/events without a prefix', async () => {
    const h = { authorization: 'Bearer ' + f.tokens.bob };
    assert.equal((await fetch(base + '/v1/devices/' + A1 + '/events', { headers: h })).status, 404);
    assert.equal((await fetch(base + '/v1/products/prod-a/events', { headers: h })).status, 404);
    assert.equal((await fetch(base + '/v1/events', { headers: h })).status, 400);
    assert.equal((await fetch(base + '/v1/devices/events')).status, 401);
  });

  it('opens with :ok and sends keepalives', async () => {
    const ac = new AbortController();
    const r = await fetch(base + '/v1/events/nothing', { headers: { authorization: 'Bearer ' + f.tokens.alice }, signal: ac.signal });
    assert.equal(r.headers.get('content-type'), 'text/event-stream');
    const reader = r.body!.getReader();
    let text = '';
    const until = Date.now() + 3000;
    while (Date.now() < until && (text.match(/:\n/g) ?? []).length < 3) text += new TextDecoder().decode((await reader.read()).value);
    ac.abort();
    assert.ok(text.startsWith(':ok\n\n'), JSON.stringify(text));
    assert.ok((text.match(/:\n/g) ?? []).length >= 3, 'keepalives: ' + JSON.stringify(text));
  });

  it('publishes Particle\'s special events: spark/device/last_reset on hello, spark/device/diagnostics/update on vitals', async () => {
    const got = await open({ deviceId: A1, name: 'spark/device', auth: f.tokens.carol });
    await settle();
    const a1 = await device(f.port, A1);
    const hello = encode('hello', { agent: '0', firmware: 1, product: Number(f.products.A), variables: [], functions: [], subscriptions: [], bootReason: 'watchdog', ota: { slot: 0, trial: false, rolledBackFrom: null } });
    await a1.publishAsync(topics.device.hello(A1), Buffer.from(hello), { qos: 1 });
    // A later hello of the same boot (a reconnect, a new variable) says none: no second last_reset.
    const again = encode('hello', { agent: '0', firmware: 1, product: Number(f.products.A), variables: [], functions: [], subscriptions: [], bootReason: 'none', ota: { slot: 0, trial: false, rolledBackFrom: null } });
    await a1.publishAsync(topics.device.hello(A1), Buffer.from(again), { qos: 1 });
    await a1.publishAsync(topics.device.vitals(A1), Buffer.from(encode('vitals', { values: { 'device.system.uptime': 12, 'device.power.battery.charge': 80 } })), { qos: 1 });
    await settle();
    a1.end(true);
    assert.deepEqual(got.filter((e) => e.name === 'spark/device/last_reset').map((e) => e.data), ['watchdog']);
    const diag = got.find((e) => e.name === 'spark/device/diagnostics/update');
    assert.ok(diag, JSON.stringify(got));
    // The device's report, and the cloud's view of the session beside it (no request answered in it: no round trip).
    const data = JSON.parse(diag.data);
    assert.ok(Number.isInteger(data.service?.cloud?.uptime), diag.data);
    assert.deepEqual(data, { device: { system: { uptime: 12 }, power: { battery: { charge: 80 } } }, service: { cloud: { uptime: data.service.cloud.uptime, publish: { sent: 0 } } } });
  });
});

describe('HTTP API: an event stream lives no longer than its access', function () {
  this.timeout(20000);
  let f: Fixture;
  let base: string;
  const opened: OpenStream[] = [];

  before(async () => {
    f = await startFixture({ httpPort: 0, sseKeepaliveMs: 200, sseMaxBufferedBytes: 64 * 1024, mqtt: { ...defaultOptions.mqtt, expirySweepMs: 100 } });
    base = 'http://127.0.0.1:' + f.bridge.ports.http;
  });
  after(async () => {
    for (const s of opened) s.close();
    await f.close();
  });

  async function stream(path: string, token: string): Promise<OpenStream> {
    const s = await openStream(base + path, token);
    opened.push(s);
    return s;
  }

  async function until(what: string, ok: () => boolean, ms = 3000): Promise<void> {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) assert.fail('not ' + what + ' within ' + ms + ' ms');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  const api = (method: string, path: string, token: string, body?: unknown) =>
    fetch(base + path, { method, headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const event = (data: string) => Buffer.from(encode('event', { data, ttl: 60 }));

  it('a member removed from the team gets no more events on the stream they opened (device events and API publishes)', async () => {
    const dave = await stream('/v1/products/prod-a/events', f.tokens.dave);
    const a1 = await device(f.port, A1);
    await a1.publishAsync(topics.device.event(A1, 'before'), event('1'), { qos: 1 });
    await until('the first event', () => dave.text.includes('event: before'));
    assert.equal((await api('DELETE', '/v1/products/prod-a/team/dave', f.tokens.alice)).status, 204);
    await a1.publishAsync(topics.device.event(A1, 'after'), event('2'), { qos: 1 });
    assert.equal((await api('POST', '/v1/products/prod-a/events', f.tokens.alice, { name: 'api-after', data: 'x' })).status, 200);
    // A marker the owner's stream sees after both: by then dave's would have had them too.
    const owner = await stream('/v1/products/prod-a/events/marker', f.tokens.alice);
    await a1.publishAsync(topics.device.event(A1, 'marker'), event('3'), { qos: 1 });
    await until('the marker', () => owner.text.includes('event: marker'));
    a1.end(true);
    assert.ok(!/event: (after|api-after|marker)/.test(dave.text), dave.text);
  });

  it('ends a stream whose reader stopped reading, once it is maxBufferedBytes behind; other streams go on', async () => {
    // A client that sends its request, then reads nothing: what the bridge writes piles up.
    const stalled = tcp(f.bridge.ports.http!, '127.0.0.1');
    await new Promise((r) => stalled.once('connect', r));
    stalled.write('GET /v1/products/prod-a/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ' + f.tokens.alice + '\r\n\r\n');
    stalled.pause();
    const reader = await stream('/v1/products/prod-a/events/big', f.tokens.alice);
    const data = 'x'.repeat(LIMITS.eventDataMaxBytes);
    // Far more than the socket buffers (about 4 MB measured on loopback) and the bound hold: 8 MB.
    const n = 8000;
    for (let i = 0; i < n; i++) assert.equal((await api('POST', '/v1/products/prod-a/events', f.tokens.alice, { name: 'big', data })).status, 200);
    // The live reader got every one.
    await until('every event', () => reader.text.split('event: big').length - 1 === n, 10000);
    // The stalled one was ended: reading now gives what was buffered, then the end, far short of all.
    let got = 0;
    const ended = new Promise<void>((r) => {
      stalled.on('data', (b: Buffer) => (got += b.length));
      stalled.once('close', () => r());
      stalled.on('error', () => undefined);
    });
    stalled.resume();
    await ended;
    assert.ok(got < n * LIMITS.eventDataMaxBytes, 'got ' + got + ' bytes');
  });

  it('ends a stream when its token is revoked', async () => {
    const erin = await stream('/v1/devices/events', f.tokens.erin);
    assert.equal((await api('DELETE', '/v1/access_tokens/current', f.tokens.erin)).status, 200);
    await until('ended', () => erin.ended);
  });

  it('ends the streams of a deleted API user and of a deleted customer', async () => {
    const bot = await stream('/v1/products/prod-a/events', f.tokens.apiUser);
    const customer = await stream('/v1/devices/events', f.tokens.customer);
    const team = ((await (await api('GET', '/v1/products/prod-a/team', f.tokens.alice)).json()) as { team: { username: string; friendly_name?: string }[] }).team;
    const dashboard = team.find((m) => m.friendly_name === 'dashboard')!.username;
    assert.equal((await api('DELETE', '/v1/products/prod-a/team/' + encodeURIComponent(dashboard), f.tokens.alice)).status, 204);
    await until('the API user\'s stream ended', () => bot.ended);
    assert.equal((await api('DELETE', '/v1/products/prod-a/customers/cust1@example.com', f.tokens.alice)).status, 204);
    await until('the customer\'s stream ended', () => customer.ended);
  });

  it('ends a stream and an MQTT session when their token expires', async () => {
    const { token } = await f.bridge.store.issueToken({ subject: { kind: 'user', id: f.users.carol }, clientId: 'test', scopes: [], ttlSeconds: 1 });
    const carol = await stream('/v1/products/prod-a/events', token);
    const mqttApp = await app(f.port, 'carol-app', token);
    await until('ended', () => carol.ended, 4000);
    await closed(mqttApp, 2000);
  });
});
