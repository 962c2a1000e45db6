/**
 * Integrations (webhooks) end to end: created with particle-api-js, triggered
 * by a device's events over MQTT, delivered to a real HTTP server on
 * loopback; templates, retries with backoff, hook-sent / hook-response /
 * hook-error events on the product's stream, disabling after repeated
 * failure, no loops on hook-* events, roles and bad input.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Particle from 'particle-api-js';
import { encode, topics } from '@flotilla/protocol';
import type { MqttClient } from 'mqtt';
import { A1, device, startFixture, type Fixture } from '../helpers/bridge-fixture.js';

interface Received {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

describe('webhooks', function () {
  this.timeout(30000);
  let f: Fixture;
  let base: string;
  let particle: InstanceType<typeof Particle>;
  let server: Server;
  let hookBase: string;
  const received: Received[] = [];
  /** Path → statuses to answer in turn (then 200). */
  const script = new Map<string, number[]>();
  let a1: MqttClient;
  const seen: { name: string; data: string }[] = [];
  let stream: { abort(): void };

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
        const next = script.get(req.url ?? '')?.shift() ?? 200;
        res.writeHead(next, { 'content-type': 'text/plain' });
        res.end(next === 200 ? 'thanks for ' + (req.url ?? '') : 'nope');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    hookBase = 'http://127.0.0.1:' + (server.address() as AddressInfo).port;
    f = await startFixture({
      httpPort: 0,
      webhooks: { attempts: 3, backoffMs: 20, timeoutMs: 1000, disableAfter: 3, concurrency: 4, queueLimit: 100 },
      mqtt: { eventRate: { perSecond: 1000, burst: 1000 } } as never,
    });
    base = 'http://127.0.0.1:' + f.bridge.ports.http;
    particle = new Particle({ baseUrl: base });
    a1 = await device(f.port, A1);
    const s = (await particle.getEventStream({ product: 'prod-a', auth: f.tokens.carol })) as unknown as { on(e: string, fn: (x: { name: string; data: string }) => void): void; abort(): void };
    s.on('event', (e) => seen.push(e));
    stream = s;
    await new Promise((r) => setTimeout(r, 100));
  });
  after(async () => {
    stream.abort();
    a1.end(true);
    await f.close();
    server.close();
  });

  const publish = (name: string, data: string) => a1.publishAsync(topics.device.event(A1, name), Buffer.from(encode('event', { data, ttl: 60 })), { qos: 1 });
  async function until(what: string, ok: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(ok(), 'timed out waiting for ' + what);
  }
  const at = (path: string) => received.filter((r) => r.path === path);

  it('creates a webhook with particle-api-js and delivers Particle\'s default body, then hook-sent and hook-response', async () => {
    const made = (await particle.createWebhook({ event: 'temp', url: hookBase + '/default', product: 'prod-a', auth: f.tokens.erin } as never)).body as unknown as { id: string; ok: boolean };
    assert.equal(made.ok, true);
    const listed = (await particle.listWebhooks({ product: 'prod-a', auth: f.tokens.carol } as never)).body as unknown as { id: string; event: string }[];
    assert.deepEqual(listed.map((w) => [w.id, w.event]), [[made.id, 'temp']]);
    await publish('temperature', '21.5');
    await until('the delivery', () => at('/default').length === 1);
    const r = at('/default')[0];
    assert.equal(r.method, 'POST');
    assert.equal(r.headers['content-type'], 'application/json');
    const body = JSON.parse(r.body) as { event: string; data: string; coreid: string; published_at: string };
    assert.deepEqual([body.event, body.data, body.coreid], ['temperature', '21.5', A1]);
    assert.ok(!Number.isNaN(Date.parse(body.published_at)));
    await until('hook-sent', () => seen.some((e) => e.name === 'hook-sent/temperature'));
    await until('hook-response', () => seen.some((e) => e.name === 'hook-response/temperature/0' && e.data === 'thanks for /default'));
    await particle.deleteWebhook({ hookId: made.id, product: 'prod-a', auth: f.tokens.erin } as never);
    await publish('temperature', '22');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(at('/default').length, 1, 'a deleted webhook no longer fires');
  });

  it('renders JSON, form and body templates and headers', async () => {
    const mk = (body: object) => fetch(base + '/v1/products/prod-a/integrations', {
      method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    assert.equal((await mk({ integration_type: 'Webhook', event: 'door', url: hookBase + '/json', headers: { 'X-Device': '{{{PARTICLE_DEVICE_ID}}}' }, json: { state: '{{{PARTICLE_EVENT_VALUE}}}', product: '{{PRODUCT_ID}}', n: 1 } })).status, 201);
    assert.equal((await mk({ event: 'door', url: hookBase + '/form', form: { s: '{{{PARTICLE_EVENT_VALUE}}}', e: '{{{PARTICLE_EVENT_NAME}}}' } })).status, 201);
    assert.equal((await mk({ event: 'door', url: hookBase + '/text', requestType: 'PUT', body: 'door is {{PARTICLE_EVENT_VALUE}}' })).status, 201);
    await publish('door', 'open & "shut"');
    await until('three deliveries', () => at('/json').length + at('/form').length + at('/text').length === 3);
    const j = at('/json')[0];
    assert.deepEqual(JSON.parse(j.body), { state: 'open & "shut"', product: f.products.A, n: 1 });
    assert.equal(j.headers['x-device'], A1);
    assert.deepEqual(Object.fromEntries(new URLSearchParams(at('/form')[0].body)), { s: 'open & "shut"', e: 'door' });
    assert.equal(at('/text')[0].method, 'PUT');
    assert.equal(at('/text')[0].body, 'door is open &amp; &quot;shut&quot;', '{{x}} is escaped, {{{x}}} is not');
  });

  it('retries with backoff, and on final failure publishes hook-error; disabled after repeated failures, re-enabled by PUT', async () => {
    const mk = await fetch(base + '/v1/products/prod-a/integrations', {
      method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': 'application/json' }, body: JSON.stringify({ event: 'flaky', url: hookBase + '/flaky' }),
    });
    const id = ((await mk.json()) as { id: string }).id;
    // Two failures then success: one delivery, three attempts, hook-sent.
    script.set('/flaky', [500, 503]);
    await publish('flaky', '1');
    await until('hook-sent/flaky', () => seen.some((e) => e.name === 'hook-sent/flaky'));
    assert.equal(at('/flaky').length, 3);
    // Every attempt fails, three deliveries in a row: hook-error each time, then disabled.
    script.set('/flaky', Array(9).fill(500));
    for (let n = 0; n < 3; n++) {
      await publish('flaky', 'x' + n);
      await until('hook-error ' + n, () => seen.filter((e) => e.name === 'hook-error/flaky/0').length === n + 1);
    }
    assert.equal(seen.find((e) => e.name === 'hook-error/flaky/0')!.data, 'HTTP 500');
    const got = await (await fetch(base + '/v1/products/prod-a/integrations/' + id, { headers: { authorization: 'Bearer ' + f.tokens.carol } })).json() as { disabled: boolean; errors_in_a_row: number };
    assert.deepEqual([got.disabled, got.errors_in_a_row], [true, 3]);
    const before = at('/flaky').length;
    await publish('flaky', 'ignored');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(at('/flaky').length, before, 'a disabled webhook does not fire');
    const put = await fetch(base + '/v1/products/prod-a/integrations/' + id, {
      method: 'PUT', headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': 'application/json' }, body: JSON.stringify({ disabled: false }),
    });
    const reenabled = (await put.json()) as { disabled: boolean; errors_in_a_row: number };
    assert.deepEqual([reenabled.disabled, reenabled.errors_in_a_row], [false, 0], 're-enabling starts the count afresh');
    script.set('/flaky', []);
    await publish('flaky', 'back');
    await until('delivery after re-enabling', () => at('/flaky').length === before + 1);
  });

  it('never triggers on hook-* or spark/* events, and a timeout counts as a failure', async () => {
    await fetch(base + '/v1/products/prod-a/integrations', {
      method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': 'application/json' }, body: JSON.stringify({ event: 'hook', url: hookBase + '/loop' }),
    });
    await publish('hook-sent/anything', '');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(at('/loop').length, 0);
    // A URL that accepts the connection and never answers: each attempt times out.
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    await fetch(base + '/v1/products/prod-a/integrations', {
      method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': 'application/json' },
      body: JSON.stringify({ event: 'slow', url: 'http://127.0.0.1:' + (silent.address() as AddressInfo).port + '/x' }),
    });
    await publish('slow', '1');
    await until('hook-error/slow', () => seen.some((e) => e.name === 'hook-error/slow/0'));
    assert.match(seen.find((e) => e.name === 'hook-error/slow/0')!.data, /timed out/);
    silent.closeAllConnections();
    silent.close();
  });

  it('refuses by role and refuses bad webhooks with a clear error', async () => {
    const post = (token: string, body: object) => fetch(base + '/v1/products/prod-a/integrations', {
      method: 'POST', headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    assert.equal((await post(f.tokens.dave, { event: 'x', url: hookBase })).status, 403);
    assert.equal((await post(f.tokens.bob, { event: 'x', url: hookBase })).status, 404);
    for (const [body, error] of [
      [{ url: hookBase }, 'event field'],
      [{ event: 'x' }, 'url field'],
      [{ event: 'x', url: 'ftp://example.com' }, 'http(s)'],
      [{ event: 'x', url: hookBase, requestType: 'PATCH' }, 'requestType'],
      [{ event: 'x', url: hookBase, headers: { 'Bad Header': 'v' } }, 'not a valid header'],
      [{ event: 'x', url: hookBase, json: {}, body: 'y' }, 'one of json, form and body'],
      [{ event: 'a//b', url: hookBase }, 'event'],
      [{ integration_type: 'AzureIotHub', event: 'x', url: hookBase }, 'Webhook'],
    ] as const) {
      const res = await post(f.tokens.erin, body);
      const text = await res.text();
      assert.equal(res.status, 400, text);
      assert.ok(text.includes(error), text);
    }
  });
});
