/**
 * Integrations (webhooks) end to end: created with particle-api-js, triggered
 * by a device's events over MQTT, delivered to a real HTTP server on
 * loopback; templates, retries with backoff, hook-sent / hook-response /
 * hook-error events on the product's stream, disabling after repeated
 * failure, no loops on hook-* events, roles and bad input; a user's own
 * webhooks (their personal products' devices), an org's (its products'
 * devices), and a device filter.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Particle from 'particle-api-js';
import { encode, topics } from '@flotilla/protocol';
import type { MqttClient } from 'mqtt';
import { openCa } from '../../bridge/src/identity/ca.js';
import { defaultWebhookOptions } from '../../bridge/src/integrations/webhooks.js';
import { A1, A2, B1, connect, device, startFixture, type Fixture } from '../helpers/bridge-fixture.js';

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
  /** Path (without its query) → a JSON answer instead of the text one. */
  const answers = new Map<string, string>();
  /** Path → something done when a request to it arrives, before it is answered (once). */
  const onArrival = new Map<string, () => void>();
  let a1: MqttClient;
  const seen: { name: string; data: string }[] = [];
  let stream: { abort(): void };

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
        if (req.url?.startsWith('/hang')) return; // never answered: the delivery's attempts time out
        onArrival.get(req.url ?? '')?.();
        onArrival.delete(req.url ?? '');
        const next = script.get(req.url ?? '')?.shift() ?? 200;
        const json = answers.get((req.url ?? '').split('?')[0]);
        res.writeHead(next, { 'content-type': json !== undefined ? 'application/json' : 'text/plain' });
        res.end(next !== 200 ? 'nope' : json ?? 'thanks for ' + (req.url ?? ''));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    hookBase = 'http://127.0.0.1:' + (server.address() as AddressInfo).port;
    f = await startFixture({
      httpPort: 0,
      // The test's receiver is on loopback: allowed here, and only its one address.
      webhooks: { attempts: 3, backoffMs: 20, timeoutMs: 1000, disableAfter: 3, concurrency: 4, productConcurrency: 2, queueLimit: 100, productQueueLimit: 100, allowTargets: ['127.0.0.1'], drainMs: 1000 },
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
    server.closeAllConnections();
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
    assert.equal(r.headers['content-type'], 'application/x-www-form-urlencoded', "Particle's default: a web form");
    const body = Object.fromEntries(new URLSearchParams(r.body)) as { event: string; data: string; coreid: string; published_at: string };
    assert.deepEqual(Object.keys(body).sort(), ['coreid', 'data', 'event', 'published_at']);
    assert.deepEqual([body.event, body.data, body.coreid], ['temperature', '21.5', A1]);
    assert.ok(!Number.isNaN(Date.parse(body.published_at)));
    await until('hook-sent', () => seen.some((e) => e.name === 'hook-sent/temperature'));
    await until('hook-response', () => seen.some((e) => e.name === 'hook-response/temperature/0' && e.data === 'thanks for /default'));
    // An event published to the product through the API fires it too, as Particle's do (coreid "api").
    await particle.publishEvent({ name: 'temperature/api', data: '23', product: 'prod-a', auth: f.tokens.erin } as never);
    await until('the API event\'s delivery', () => at('/default').length === 2);
    const api = Object.fromEntries(new URLSearchParams(at('/default')[1].body));
    assert.deepEqual([api.event, api.data, api.coreid], ['temperature/api', '23', 'api']);
    await until('its hook-response', () => seen.some((e) => e.name === 'hook-response/temperature/api/0'));
    await particle.deleteWebhook({ hookId: made.id, product: 'prod-a', auth: f.tokens.erin } as never);
    await publish('temperature', '22');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(at('/default').length, 2, 'a deleted webhook no longer fires');
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
    // Particle's default data under the template's fields (noDefaults not set).
    const { published_at: jsonAt, ...json } = JSON.parse(j.body) as Record<string, unknown>;
    assert.deepEqual(json, { event: 'door', data: 'open & "shut"', coreid: A1, state: 'open & "shut"', product: f.products.A, n: 1 });
    assert.ok(!Number.isNaN(Date.parse(String(jsonAt))));
    assert.equal(j.headers['x-device'], A1);
    const { published_at: formAt, ...fields } = Object.fromEntries(new URLSearchParams(at('/form')[0].body));
    assert.deepEqual(fields, { event: 'door', data: 'open & "shut"', coreid: A1, s: 'open & "shut"', e: 'door' });
    assert.equal(formAt, jsonAt, 'one event, one published_at');
    assert.equal(at('/text')[0].method, 'PUT');
    assert.equal(at('/text')[0].body, 'door is open &amp; &quot;shut&quot;', '{{x}} is escaped, {{{x}}} is not');
  });

  it("fills Particle's PRODUCT_VERSION (the firmware of the device's last hello) and PRODUCT_USER_ID (who claimed it); both empty for an event published through the API", async () => {
    const mk = await fetch(base + '/v1/products/prod-a/integrations', {
      method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': 'application/json' },
      body: JSON.stringify({ event: 'versioned', url: hookBase + '/versioned', json: { v: '{{PRODUCT_VERSION}}', u: '{{{PRODUCT_USER_ID}}}' }, noDefaults: true }),
    });
    assert.equal(mk.status, 201);
    const hello = encode('hello', { agent: '0', firmware: 7, product: Number(f.products.A), variables: [], functions: [], subscriptions: [], bootReason: 'pin_reset', ota: { slot: 0, trial: false, rolledBackFrom: null } });
    await a1.publishAsync(topics.device.hello(A1), Buffer.from(hello), { qos: 1 });
    // The device's reference carries its version once the hello is stored.
    for (let i = 0; i < 250 && (await f.bridge.store.getDevice(A1))?.firmwareVersion !== 7; i++) await new Promise((r) => setTimeout(r, 20));
    await publish('versioned', 'x');
    await particle.publishEvent({ name: 'versioned/api', data: 'y', product: 'prod-a', auth: f.tokens.erin } as never);
    await until('both deliveries', () => at('/versioned').length === 2);
    const claimer = (await f.bridge.store.getDevice(A1))!.customerId;
    assert.ok(claimer, "the fixture's customer claimed A1");
    const bodies = at('/versioned').map((r) => JSON.parse(r.body) as { v: string; u: string });
    assert.deepEqual(bodies.find((b) => b.v !== ''), { v: '7', u: claimer });
    assert.deepEqual(bodies.find((b) => b.v === ''), { v: '', u: '' }, 'an API event has no device version nor user');
  });

  it('a PUT switches the body between json, form and body, or clears it with null; two kinds at once are refused and change nothing', async () => {
    const call = (method: string, path: string, body: object) => fetch(base + '/v1/products/prod-a/integrations' + path, {
      method, headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    const made = (await (await call('POST', '', { event: 'switch', url: hookBase + '/switch', body: 'plain {{PARTICLE_EVENT_VALUE}}' })).json()) as { id: string; body?: string };
    assert.equal(made.body, 'plain {{PARTICLE_EVENT_VALUE}}');
    const toJson = await call('PUT', '/' + made.id, { json: { v: '{{{PARTICLE_EVENT_VALUE}}}' } });
    assert.equal(toJson.status, 200);
    const j = (await toJson.json()) as Record<string, unknown>;
    assert.deepEqual([j.json, j.body, j.form], [{ v: '{{{PARTICLE_EVENT_VALUE}}}' }, undefined, undefined], 'json replaced the stored body');
    const both = await call('PUT', '/' + made.id, { form: { a: 'b' }, body: 'x' });
    assert.equal(both.status, 400);
    assert.match(((await both.json()) as { error: string }).error, /give one of json, form and body/);
    const kept = (await (await fetch(base + '/v1/products/prod-a/integrations/' + made.id, { headers: { authorization: 'Bearer ' + f.tokens.erin } })).json()) as Record<string, unknown>;
    assert.deepEqual(kept.json, { v: '{{{PARTICLE_EVENT_VALUE}}}' }, 'a refused PUT changed nothing');
    const cleared = (await (await call('PUT', '/' + made.id, { json: null })).json()) as Record<string, unknown>;
    assert.deepEqual([cleared.json, cleared.body, cleared.form], [undefined, undefined, undefined]);
    const toBody = (await (await call('PUT', '/' + made.id, { body: 'again {{PARTICLE_EVENT_VALUE}}' })).json()) as Record<string, unknown>;
    assert.equal(toBody.body, 'again {{PARTICLE_EVENT_VALUE}}');
    const noBody = (await (await call('PUT', '/' + made.id, { body: null })).json()) as Record<string, unknown>;
    assert.equal(noBody.body, undefined, 'body: null clears it');
    await publish('switch', 'on');
    await until('delivery with the default form body', () => at('/switch').length === 1);
    assert.equal(new URLSearchParams(at('/switch')[0].body).get('data'), 'on', 'with no body template, Particle\'s default form data goes');
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

  it('a delivery whose integration the store cannot read at its attempt waits for its next attempt, and is not counted against the endpoint', async () => {
    const mk = await fetch(base + '/v1/products/prod-a/integrations', {
      method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': 'application/json' }, body: JSON.stringify({ event: 'storefault', url: hookBase + '/storefault' }),
    });
    const id = ((await mk.json()) as { id: string }).id;
    const store = f.bridge.store;
    const list = store.listIntegrations;
    let refused = 0;
    // The first attempt fails (HTTP 500); as it does, the cached list goes and the store fails the next read.
    script.set('/storefault', [500]);
    onArrival.set('/storefault', () => {
      store.listIntegrations = () => {
        store.listIntegrations = list;
        refused++;
        return Promise.reject(new Error('database is locked'));
      };
      f.bridge.webhooks.invalidate({ productId: f.products.A } as never);
    });
    try {
      await publish('storefault', '1');
      await until('hook-sent/storefault', () => seen.some((e) => e.name === 'hook-sent/storefault'));
    } finally {
      store.listIntegrations = list;
    }
    assert.equal(refused, 1, 'the second attempt met the store fault');
    assert.equal(at('/storefault').length, 2, 'the first and the third attempt were sent');
    const got = (await (await fetch(base + '/v1/products/prod-a/integrations/' + id, { headers: { authorization: 'Bearer ' + f.tokens.carol } })).json()) as { errors_in_a_row: number };
    assert.equal(got.errors_in_a_row, 0, 'a delivered event resets the count; the store fault was never the endpoint\'s');
    await fetch(base + '/v1/products/prod-a/integrations/' + id, { method: 'DELETE', headers: { authorization: 'Bearer ' + f.tokens.erin } });
  });

  it('stops counting failures once it is disabled: deliveries still in flight then fail without adding to the count', async () => {
    const mk = await fetch(base + '/v1/products/prod-a/integrations', {
      method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': 'application/json' }, body: JSON.stringify({ event: 'burst', url: hookBase + '/burst' }),
    });
    const id = ((await mk.json()) as { id: string }).id;
    script.set('/burst', Array(100).fill(500));
    // Eight at once: two slots for the product, so several are in flight when the third failure disables it.
    await Promise.all(Array.from({ length: 8 }, (_, n) => publish('burst', String(n))));
    await until('disabled', () => seen.filter((e) => e.name === 'hook-error/burst/0').length >= 3);
    await f.bridge.webhooks.idle();
    const got = (await (await fetch(base + '/v1/products/prod-a/integrations/' + id, { headers: { authorization: 'Bearer ' + f.tokens.carol } })).json()) as { disabled: boolean; errors_in_a_row: number };
    // Before, the in-flight deliveries went on counting past the limit (12 or 13 for 10), each logging "disabled" again.
    assert.deepEqual([got.disabled, got.errors_in_a_row], [true, 3]);
    script.delete('/burst');
    await fetch(base + '/v1/products/prod-a/integrations/' + id, { method: 'DELETE', headers: { authorization: 'Bearer ' + f.tokens.erin } });
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

  it('does not send to a local, private or reserved address the bridge\'s operator has not allowed: refused when written, and when a template renders to one', async () => {
    const port = (server.address() as AddressInfo).port;
    const mk = (event: string, url: string) => fetch(base + '/v1/products/prod-a/integrations', {
      method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': 'application/json' }, body: JSON.stringify({ event, url }),
    });
    // A literal address: refused at once, with why. (The third is a cloud's metadata service, written as an
    // IPv4-mapped IPv6 address; the URL parser writes it ::ffff:a9fe:a9fe.)
    for (const [url, address] of [[`http://127.0.0.2:${port}/ssrf`, '127.0.0.2'], [`http://[::1]:${port}/ssrf`, '::1'], ['http://[::ffff:169.254.169.254]/latest/meta-data', '::ffff:a9fe:a9fe']]) {
      const res = await mk('ssrf-literal', url);
      const body = (await res.json()) as { error: string };
      assert.equal(res.status, 400, url);
      assert.ok(body.error.includes('url: webhook target ' + address + ' is a local, private or reserved address'), body.error);
    }
    // So is a change to one.
    const created = await mk('ssrf-moved', hookBase + '/fine');
    assert.equal(created.status, 201);
    const { id } = (await created.json()) as { id: string };
    const moved = await fetch(base + '/v1/products/prod-a/integrations/' + id, {
      method: 'PUT', headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': 'application/json' }, body: JSON.stringify({ url: 'http://10.1.2.3/x' }),
    });
    assert.equal(moved.status, 400);
    // A host from the event's data is only known when it renders: the delivery is refused then, and hook-error says why.
    assert.equal((await mk('ssrf-rendered', `http://{{{PARTICLE_EVENT_VALUE}}}:${port}/ssrf`)).status, 201);
    const before = received.length;
    for (const address of ['127.0.0.2', '[::1]', '[::ffff:169.254.169.254]']) await publish('ssrf-rendered', address);
    await until('three hook-errors', () => seen.filter((e) => e.name === 'hook-error/ssrf-rendered/0').length === 3);
    const errors = seen.filter((e) => e.name === 'hook-error/ssrf-rendered/0').map((e) => e.data);
    for (const address of ['127.0.0.2', '::1', '::ffff:a9fe:a9fe']) {
      assert.ok(errors.some((d) => d.includes('webhook target ' + address + ' is a local, private or reserved address')), address + ': ' + errors.join(' | '));
    }
    assert.equal(received.length, before, 'nothing reached the receiver');
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
      [{ event: 'x', url: hookBase, deviceid: 'the-kitchen-one' }, 'deviceid: no device named'],
      [{ event: 'x', url: hookBase, deviceid: 42 }, 'deviceid must be a device ID'],
      [{ event: 'x', url: hookBase, responseTopic: '{{PARTICLE_DEVICE_ID}}//reply' }, 'responseTopic must render to an event name'],
      [{ event: 'x', url: hookBase, errorResponseTopic: 42 }, 'errorResponseTopic must render to an event name'],
      [{ event: 'x', url: hookBase, query: { a: 1 } }, 'query must be an object of strings'],
      [{ event: 'x', url: hookBase, query: 'a=1' }, 'query must be an object of strings'],
      [{ event: 'x', url: hookBase, auth: { username: 'u' } }, 'auth must be {username, password}'],
      [{ event: 'x', url: hookBase, auth: 'u:p' }, 'auth must be {username, password}'],
      [{ event: 'x', url: hookBase, noDefaults: 'sometimes' }, 'noDefaults must be true or false'],
      [{ event: 'x', url: hookBase, rejectUnauthorized: 'no' }, 'rejectUnauthorized must be true or false'],
      [{ event: 'x', url: hookBase, rejectUnauthorized: 2 }, 'rejectUnauthorized must be true or false'],
      [{ event: 'x', url: hookBase, disabled: 'yes' }, 'disabled must be true or false'],
      [{ event: 'x', url: hookBase, responseTemplate: { a: 1 } }, 'responseTemplate must be a string'],
      [{ event: 'x', url: hookBase, json: { a: '{{#open}}x' } }, 'json has a template that does not parse: Unclosed section'],
      [{ event: 'x', url: hookBase, responseTemplate: '{{a' }, 'responseTemplate has a template that does not parse'],
      [{ event: 'x', url: hookBase + '/{{#x}}' }, 'url must be an absolute http(s) URL'],
      [{ event: 'x', url: '{{{where}}}' }, 'url must be an absolute http(s) URL'],
      [{ event: 'x', url: hookBase, responseTopic: '{{#x}}' }, 'responseTopic must render to an event name: it Unclosed section'],
      [{ event: 'x', url: hookBase, responseTopic: '{{PARTICLE_DEVICE_ID}}/hook-response/{{req}}/' }, 'responseTopic must render to an event name'],
      [{ event: 'x', url: hookBase, responseTopic: 'spark/{{PARTICLE_EVENT_NAME}}' }, 'responseTopic must render to an event name: it starts with'],
    ] as const) {
      const res = await post(f.tokens.erin, body);
      const text = await res.text();
      assert.equal(res.status, 400, text);
      assert.ok(text.includes(error), text);
    }
    // A response topic naming a field of the event's data is checked with a value there (it was refused: the field rendered empty).
    const byField = await post(f.tokens.erin, { event: 'byfield', url: hookBase, responseTopic: '{{PARTICLE_DEVICE_ID}}/hook-response/{{req}}' });
    assert.equal(byField.status, 201, await byField.clone().text());
    await fetch(base + '/v1/products/prod-a/integrations/' + ((await byField.json()) as { id: string }).id, { method: 'DELETE', headers: { authorization: 'Bearer ' + f.tokens.erin } });
  });
  it("a user's own webhooks (no product) fire for the devices of their personal products, not for anyone else's; a device filter narrows one", async () => {
    const alice = (await particle.createWebhook({ event: 'mine', url: hookBase + '/alice', auth: f.tokens.alice } as never)).body as unknown as { id: string; ok: boolean };
    assert.equal(alice.ok, true);
    await particle.createWebhook({ event: 'mine', url: hookBase + '/bob', auth: f.tokens.bob } as never);
    // particle-api-js's integration form: deviceid in the body, the settings beside it.
    const onlyA2 = (await particle.createIntegration({ event: 'mine', deviceId: A2, settings: { integration_type: 'Webhook', url: hookBase + '/alice-a2' }, auth: f.tokens.alice } as never)).body as unknown as { id: string; deviceID: string };
    assert.equal(onlyA2.deviceID, A2);
    const listed = (await particle.listWebhooks({ auth: f.tokens.alice } as never)).body as unknown as { id: string }[];
    assert.deepEqual(listed.map((w) => w.id).sort(), [alice.id, onlyA2.id].sort());
    const bobs = (await particle.listIntegrations({ auth: f.tokens.bob } as never)).body as unknown as { integrations: { url: string }[] };
    assert.deepEqual(bobs.integrations.map((i) => i.url), [hookBase + '/bob'], "bob sees only his own");
    // A1 is in product A, alice's personal product.
    await publish('mine/1', 'x');
    await until("alice's delivery", () => at('/alice').length === 1);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(at('/bob').length, 0, "bob's webhook does not see alice's devices");
    assert.equal(at('/alice-a2').length, 0, 'the A2-only webhook does not fire for A1');
    const a2 = await device(f.port, A2);
    await a2.publishAsync(topics.device.event(A2, 'mine/2'), Buffer.from(encode('event', { data: 'y', ttl: 60 })), { qos: 1 });
    await until('the A2-only delivery', () => at('/alice-a2').length === 1 && at('/alice').length === 2);
    a2.end(true);
    // Published through the API (particle publish): the user's own webhook fires with Particle's coreid "api", a device-filtered one does not.
    assert.equal((await particle.publishEvent({ name: 'mine/api', data: 'z', auth: f.tokens.alice } as never)).body.ok, true);
    await until('the API event\'s delivery', () => at('/alice').length === 3);
    assert.deepEqual(Object.fromEntries(new URLSearchParams(at('/alice')[2].body)), { event: 'mine/api', data: 'z', coreid: 'api', published_at: Object.fromEntries(new URLSearchParams(at('/alice')[2].body)).published_at });
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual([at('/alice-a2').length, at('/bob').length], [1, 0]);
    // Someone else's integration is not there for them: 404, whatever they try; a customer or an API user has none.
    for (const [method, path] of [['GET', '/v1/integrations/' + alice.id], ['PUT', '/v1/integrations/' + alice.id], ['DELETE', '/v1/webhooks/' + alice.id]]) {
      const res = await fetch(base + path, { method, headers: { authorization: 'Bearer ' + f.tokens.bob, 'content-type': 'application/json' }, body: method === 'PUT' ? '{"disabled":true}' : undefined });
      assert.equal(res.status, 404, method + ' ' + path);
    }
    for (const token of [f.tokens.customer, f.tokens.apiUser]) {
      const res = await fetch(base + '/v1/integrations', { method: 'POST', headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' }, body: JSON.stringify({ event: 'x', url: hookBase }) });
      assert.equal(res.status, 403);
      assert.match(await res.text(), /Only a user/);
    }
    await particle.deleteWebhook({ hookId: alice.id, auth: f.tokens.alice } as never);
    await publish('mine/3', 'z');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(at('/alice').length, 3, 'a deleted user webhook no longer fires');
  });

  it("an org's integrations fire for the devices of all its products, by the org team's roles", async () => {
    const s = f.bridge.store;
    const org = await s.createOrg('Hooks Org', f.users.alice);
    await s.addOrgMember(org.id, f.users.dave, 'support');
    await s.addOrgMember(org.id, f.users.erin, 'developer');
    const W1 = 'c1c1c1c1c1c1c1c1c1c1c1c1';
    const product = await s.createProduct({ name: 'W', slug: 'prod-w', orgId: org.id });
    await s.createDevice({ id: W1, productId: product.id });
    await s.setDeviceSecret(W1, 'secret-w1');
    const made = (await particle.createIntegration({ org: org.slug, event: 'orgevt', settings: { url: hookBase + '/org', json: { p: '{{PRODUCT_ID}}', d: '{{PARTICLE_DEVICE_ID}}' }, noDefaults: true }, auth: f.tokens.erin } as never)).body as unknown as { id: string };
    const post = (token: string) => fetch(base + '/v1/orgs/' + org.slug + '/integrations', { method: 'POST', headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' }, body: JSON.stringify({ event: 'x', url: hookBase }) });
    assert.equal((await post(f.tokens.dave)).status, 403, 'Support views, does not create');
    assert.equal((await post(f.tokens.bob)).status, 404, 'no role on the org: as if it did not exist');
    assert.equal((await post(f.tokens.apiUser)).status, 404, "a product's API user does not reach the org");
    const listed = (await particle.listIntegrations({ org: org.slug, auth: f.tokens.dave } as never)).body as unknown as { integrations: { id: string }[] };
    assert.deepEqual(listed.integrations.map((i) => i.id), [made.id]);
    assert.equal((await fetch(base + '/v1/products/prod-a/integrations/' + made.id, { headers: { authorization: 'Bearer ' + f.tokens.alice } })).status, 404, "an org's integration is not a product's");
    const w1 = await connect(f.port, { clientId: W1, username: W1, password: 'secret-w1' });
    await w1.publishAsync(topics.device.event(W1, 'orgevt'), Buffer.from(encode('event', { data: '1', ttl: 60 })), { qos: 1 });
    await until('the org delivery', () => at('/org').length === 1);
    assert.deepEqual(JSON.parse(at('/org')[0].body), { p: String(product.id), d: W1 });
    await publish('orgevt', 'from a personal product');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(at('/org').length, 1, "a device outside the org's products does not trigger it");
    const edited = await fetch(base + '/v1/orgs/' + org.slug + '/integrations/' + made.id, { method: 'PUT', headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': 'application/json' }, body: JSON.stringify({ disabled: true }) });
    assert.equal(((await edited.json()) as { disabled: boolean }).disabled, true);
    await w1.publishAsync(topics.device.event(W1, 'orgevt'), Buffer.from(encode('event', { data: '2', ttl: 60 })), { qos: 1 });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(at('/org').length, 1, 'a disabled org integration does not fire');
    w1.end(true);
  });
  it("names the response and error events by the webhook's responseTopic and errorResponseTopic (particle-api-js hook.responseEvent), so a device can subscribe to its own", async () => {
    const hook = { responseEvent: '{{PARTICLE_DEVICE_ID}}/hook-response/{{PARTICLE_EVENT_NAME}}', errorResponseEvent: '{{PARTICLE_DEVICE_ID}}/hook-error/{{PARTICLE_EVENT_NAME}}' };
    const made = (await particle.createWebhook({ event: 'ask', url: hookBase + '/ask', product: 'prod-a', hook, auth: f.tokens.erin } as never)).body as unknown as { id: string };
    const got = (await (await fetch(base + '/v1/products/prod-a/integrations/' + made.id, { headers: { authorization: 'Bearer ' + f.tokens.carol } })).json()) as { responseTopic: string; errorResponseTopic: string };
    assert.deepEqual([got.responseTopic, got.errorResponseTopic], [hook.responseEvent, hook.errorResponseEvent]);
    await publish('ask/1', 'q');
    await until('the named response', () => seen.some((e) => e.name === A1 + '/hook-response/ask/1/0' && e.data === 'thanks for /ask'));
    assert.ok(!seen.some((e) => e.name.startsWith('hook-response/ask')), 'not under the default name');
    script.set('/ask', [500, 500, 500]);
    await publish('ask/2', 'q');
    await until('the named error', () => seen.some((e) => e.name === A1 + '/hook-error/ask/2/0' && e.data === 'HTTP 500'));
  });
  it('sends the time the event streams show: one published_at for an event, a device\'s or one published through the API', async () => {
    const made = (await particle.createWebhook({ event: 'stamp', url: hookBase + '/stamp', product: 'prod-a', auth: f.tokens.erin } as never)).body as unknown as { id: string };
    await publish('stamp', 'd');
    assert.equal((await fetch(base + '/v1/products/prod-a/events', { method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'stamp-api', data: 'a' }) })).status, 200);
    await until('both delivered and streamed', () => at('/stamp').length === 2 && seen.some((e) => e.name === 'stamp') && seen.some((e) => e.name === 'stamp-api'));
    for (const [name, coreid] of [['stamp', A1], ['stamp-api', 'api']]) {
      const hooked = at('/stamp').map((r) => Object.fromEntries(new URLSearchParams(r.body))).find((b) => b.event === name)!;
      const streamed = seen.find((e) => e.name === name) as unknown as { published_at: string };
      assert.equal(hooked.coreid, coreid);
      assert.equal(hooked.published_at, streamed.published_at, name);
    }
    await particle.deleteWebhook({ hookId: made.id, product: 'prod-a', auth: f.tokens.erin } as never);
  });
  it('names a response by its default when the responseTopic, filled in from the event, is no event name: a line break in the data wrote events of its own into every stream', async () => {
    const made = (await particle.createWebhook({ event: 'inj', url: hookBase + '/inj', product: 'prod-a', hook: { responseEvent: '{{PARTICLE_DEVICE_ID}}/ack/{{PARTICLE_EVENT_VALUE}}' }, auth: f.tokens.erin } as never)).body as unknown as { id: string };
    const forged = 'x\n\nevent: spark/status\ndata: {"data":"offline","coreid":"' + B1 + '"}\n\nevent: y';
    await publish('inj', forged);
    await until('the response, under the default name', () => seen.some((e) => e.name === 'hook-response/inj/0'));
    assert.ok(!seen.some((e) => e.name.includes('ack') || (e.name === 'spark/status' && (e as { coreid?: string }).coreid === B1)), JSON.stringify(seen.slice(-5)));
    // Nor a name Particle keeps: spark/status from a device's data would read as the cloud's own.
    const bare = (await particle.createWebhook({ event: 'inj2', url: hookBase + '/inj2', product: 'prod-a', hook: { responseEvent: '{{PARTICLE_EVENT_VALUE}}' }, auth: f.tokens.erin } as never)).body as unknown as { id: string };
    await publish('inj2', 'spark/status');
    await until('the response, under the default name', () => seen.some((e) => e.name === 'hook-response/inj2/0'));
    assert.ok(!seen.some((e) => e.name.startsWith('spark/status/')), JSON.stringify(seen.slice(-3)));
    await particle.deleteWebhook({ hookId: bare.id, product: 'prod-a', auth: f.tokens.erin } as never);
    // A value that makes an event name is taken as the name.
    await publish('inj', 'fine');
    await until('the named response', () => seen.some((e) => e.name === A1 + '/ack/fine/0'));
    await particle.deleteWebhook({ hookId: made.id, product: 'prod-a', auth: f.tokens.erin } as never);
  });
  it("takes particle-api-js's hook options: GET with a query, a URL template, the data's fields, Basic auth; the password is shown masked and kept by a PUT that sends the mask back", async () => {
    const hook = { method: 'GET', query: { t: '{{{temp}}}' }, auth: { username: 'hook', password: 's3cret-{{PRODUCT_ID}}' } };
    const made = (await particle.createWebhook({ event: 'climate', url: hookBase + '/rooms/{{room}}', product: 'prod-a', hook, auth: f.tokens.erin } as never)).body as unknown as { id: string };
    const data = JSON.stringify({ room: 'hall 2', temp: 21.5 });
    await publish('climate', data);
    await until('the GET', () => received.some((r) => r.path.startsWith('/rooms/hall%202')));
    const r = received.find((x) => x.path.startsWith('/rooms/hall%202'))!;
    assert.equal(r.method, 'GET');
    assert.equal(r.body, '');
    const { published_at: at1, ...q } = Object.fromEntries(new URL(r.path, hookBase).searchParams);
    assert.deepEqual(q, { event: 'climate', data, coreid: A1, t: '21.5' }, "the default data and the query's fields, in the query string");
    assert.ok(!Number.isNaN(Date.parse(at1)));
    const basic = 'Basic ' + Buffer.from('hook:s3cret-' + f.products.A).toString('base64');
    assert.equal(r.headers.authorization, basic);

    const url = base + '/v1/products/prod-a/integrations/' + made.id;
    const text = await (await fetch(url, { headers: { authorization: 'Bearer ' + f.tokens.carol } })).text();
    assert.ok(!text.includes('s3cret'), 'the password stays with the bridge');
    const got = JSON.parse(text) as { auth: unknown; query: unknown; requestType: string; noDefaults: boolean; rejectUnauthorized: boolean; url: string };
    assert.deepEqual([got.auth, got.query, got.requestType, got.noDefaults, got.rejectUnauthorized, got.url], [{ username: 'hook', password: '********' }, hook.query, 'GET', false, true, hookBase + '/rooms/{{room}}']);
    const put = await fetch(url, { method: 'PUT', headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': 'application/json' }, body: JSON.stringify({ auth: got.auth, noDefaults: true }) });
    assert.equal(put.status, 200, await put.clone().text());
    await publish('climate', JSON.stringify({ room: 'hall 3', temp: 19 }));
    await until('the second GET', () => received.some((x) => x.path.startsWith('/rooms/hall%203')));
    const r2 = received.find((x) => x.path.startsWith('/rooms/hall%203'))!;
    assert.equal(r2.headers.authorization, basic, 'the password sent back masked was kept');
    assert.deepEqual(Object.fromEntries(new URL(r2.path, hookBase).searchParams), { t: '19' }, 'noDefaults: only the query');
    const changed = await fetch(url, { method: 'PUT', headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': 'application/json' }, body: JSON.stringify({ auth: { username: 'hook', password: 'new' } }) });
    assert.equal(changed.status, 200);
    await publish('climate', JSON.stringify({ room: 'hall 4' }));
    await until('the third GET', () => received.some((x) => x.path.startsWith('/rooms/hall%204')));
    assert.equal(received.find((x) => x.path.startsWith('/rooms/hall%204'))!.headers.authorization, 'Basic ' + Buffer.from('hook:new').toString('base64'));
    // The stored password is only sent where it was set for: moving the URL to another host needs it again.
    const put2 = (body: object) => fetch(url, { method: 'PUT', headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    for (const body of [{ url: 'https://collector.example/in' }, { url: 'https://collector.example/in', auth: got.auth }]) {
      const res = await put2(body);
      assert.equal(res.status, 400);
      assert.match(((await res.json()) as { error: string }).error, /moves to another host: give auth again/);
    }
    assert.equal((await put2({ url: hookBase + '/rooms/{{room}}/again' })).status, 200, 'the same host keeps it');
    const dropped = await put2({ url: 'https://collector.example/in', auth: null });
    assert.equal(dropped.status, 200);
    assert.equal(((await dropped.json()) as { auth?: unknown }).auth, undefined);
    const mask = await put2({ auth: { username: 'u', password: '********' } });
    assert.deepEqual([mask.status, ((await mask.json()) as { error: string }).error], [400, 'auth.password: give the password (there is none stored to keep)']);
    await particle.deleteWebhook({ hookId: made.id, product: 'prod-a', auth: f.tokens.erin } as never);
  });
  it('turns a JSON response into the response event through responseTemplate; a response that is not JSON goes as it came', async () => {
    answers.set('/weather', JSON.stringify({ main: { temp: 7 }, name: 'Oslo & co' }));
    const hook = { responseTemplate: '{{main.temp}} in {{{name}}}' };
    const made = (await particle.createWebhook({ event: 'weather', url: hookBase + '/weather', product: 'prod-a', hook, auth: f.tokens.erin } as never)).body as unknown as { id: string };
    await publish('weather', 'now');
    await until('the templated response', () => seen.some((e) => e.name === 'hook-response/weather/0' && e.data === '7 in Oslo & co'));
    answers.delete('/weather');
    await publish('weather', 'again');
    await until('the plain response', () => seen.some((e) => e.name === 'hook-response/weather/0' && e.data === 'thanks for /weather'));
    await particle.deleteWebhook({ hookId: made.id, product: 'prod-a', auth: f.tokens.erin } as never);
  });
  it('passes on the first 100 KB of a huge response, in 512-byte pieces', async () => {
    // 3 MB: past the 1 MB the engine reads; the 100 KB it passes on are 200 pieces, the last one 0-based 199.
    answers.set('/huge', JSON.stringify({ pad: 'y'.repeat(3 * 1024 * 1024) }));
    const made = (await particle.createWebhook({ event: 'huge', url: hookBase + '/huge', product: 'prod-a', auth: f.tokens.erin } as never)).body as unknown as { id: string };
    await publish('huge', 'x');
    await until('the last piece', () => seen.some((e) => e.name === 'hook-response/huge/199'));
    await new Promise((r) => setTimeout(r, 100));
    const pieces = seen.filter((e) => e.name.startsWith('hook-response/huge/'));
    assert.equal(pieces.length, 200);
    assert.ok(pieces.every((e) => e.data.length === 512));
    assert.ok(seen.some((e) => e.name === 'hook-sent/huge'));
    answers.delete('/huge');
    await particle.deleteWebhook({ hookId: made.id, product: 'prod-a', auth: f.tokens.erin } as never);
  });
  it('checks an https certificate unless the webhook says rejectUnauthorized: false', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-hook-tls-'));
    const ctx = await (await openCa(dir)).serverContext();
    const tls = createHttpsServer({ key: ctx.key, cert: ctx.cert }, (req, res) => {
      req.resume();
      req.on('end', () => res.end('secure hello from ' + req.url));
    });
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', () => r()));
    const tlsBase = 'https://127.0.0.1:' + (tls.address() as AddressInfo).port;
    try {
      const checked = (await particle.createWebhook({ event: 'tls', url: tlsBase + '/checked', product: 'prod-a', hook: { responseEvent: 'checked-response', errorResponseEvent: 'checked-error' }, auth: f.tokens.erin } as never)).body as unknown as { id: string };
      const unchecked = (await particle.createWebhook({ event: 'tls', url: tlsBase + '/unchecked', product: 'prod-a', rejectUnauthorized: false, auth: f.tokens.erin } as never)).body as unknown as { id: string };
      await publish('tls', 'x');
      await until('the unchecked delivery', () => seen.some((e) => e.name === 'hook-response/tls/0' && e.data === 'secure hello from /unchecked'));
      // The bridge's own CA signed the server's certificate, and nothing on this machine trusts it.
      await until('the checked one failing on the certificate', () => seen.some((e) => e.name === 'checked-error/0' && /certificate/.test(e.data)));
      assert.ok(!seen.some((e) => e.name.startsWith('checked-response')));
      for (const id of [checked.id, unchecked.id]) await particle.deleteWebhook({ hookId: id, product: 'prod-a', auth: f.tokens.erin } as never);
    } finally {
      tls.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("takes a device's name as the device filter (Particle's deviceID is an ID or a name): the one device of that name the caller sees", async () => {
    const rename = (id: string, name: string) => fetch(base + '/v1/devices/' + id, { method: 'PUT', headers: { authorization: 'Bearer ' + f.tokens.alice, 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
    assert.equal((await rename(A1, 'kitchen')).status, 200);
    const made = (await particle.createWebhook({ event: 'named', url: hookBase + '/named', device: 'kitchen', product: 'prod-a', auth: f.tokens.alice } as never)).body as unknown as { id: string; deviceID?: string };
    const got = (await (await fetch(base + '/v1/products/prod-a/integrations/' + made.id, { headers: { authorization: 'Bearer ' + f.tokens.alice } })).json()) as { deviceID: string };
    assert.equal(got.deviceID, A1, 'kept as the device ID, so a rename does not move it');
    const a2 = await device(f.port, A2);
    await a2.publishAsync(topics.device.event(A2, 'named/2'), Buffer.from(encode('event', { data: 'y', ttl: 60 })), { qos: 1 });
    await publish('named/1', 'x');
    await until('the delivery for kitchen', () => at('/named').length === 1);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(at('/named').length, 1, 'A2 is not kitchen');
    assert.equal(new URLSearchParams(at('/named')[0].body).get('coreid'), A1);
    a2.end(true);
    // A device of that name in another product the caller sees does not count: only the integration's own devices do.
    await f.bridge.store.addProductMember(f.products.B, f.users.alice, 'developer');
    await f.bridge.store.updateDevice(B1, { name: 'kitchen' });
    const scoped = await fetch(base + '/v1/products/prod-a/integrations', { method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.alice, 'content-type': 'application/json' }, body: JSON.stringify({ event: 'named', url: hookBase, deviceid: 'kitchen' }) });
    const scopedBody = (await scoped.json()) as { deviceID: string; id: string };
    assert.equal(scopedBody.deviceID, A1, "prod-b's kitchen is not prod-a's");
    // By ID too: B1 is a device alice sees, but not one whose events reach prod-a's integrations (the filter would never fire);
    // an unknown ID answers alike.
    for (const id of [B1, 'ffffffffffffffffffffffff']) {
      const other = await fetch(base + '/v1/products/prod-a/integrations', { method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.alice, 'content-type': 'application/json' }, body: JSON.stringify({ event: 'named', url: hookBase, deviceid: id }) });
      assert.deepEqual([other.status, ((await other.json()) as { error: string }).error], [400, `deviceid: no device ${id} among this integration's devices that you can see`]);
    }
    const byId = await fetch(base + '/v1/products/prod-a/integrations/' + scopedBody.id, { method: 'PUT', headers: { authorization: 'Bearer ' + f.tokens.alice, 'content-type': 'application/json' }, body: JSON.stringify({ deviceid: A2.toUpperCase() }) });
    assert.equal(((await byId.json()) as { deviceID: string }).deviceID, A2, 'an ID of its own devices, in any case');
    await fetch(base + '/v1/products/prod-a/integrations/' + scopedBody.id, { method: 'DELETE', headers: { authorization: 'Bearer ' + f.tokens.alice } });
    await f.bridge.store.updateDevice(B1, { name: null });
    await f.bridge.store.removeProductMember(f.products.B, f.users.alice);
    // Two devices of that name: ambiguous, the ID is needed.
    assert.equal((await rename(A2, 'kitchen')).status, 200);
    const twice = await fetch(base + '/v1/products/prod-a/integrations', { method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.alice, 'content-type': 'application/json' }, body: JSON.stringify({ event: 'named', url: hookBase, deviceid: 'kitchen' }) });
    assert.equal(twice.status, 400);
    assert.equal(((await twice.json()) as { error: string }).error, `deviceid: 2 devices you can see are named "kitchen" (${[A1, A2].sort().join(', ')}): give the device ID`);
    for (const id of [A1, A2]) await rename(id, '');
    await particle.deleteWebhook({ hookId: made.id, product: 'prod-a', auth: f.tokens.alice } as never);
  });
  it("is edited with particle-api-js's editIntegration: a new URL and noDefaults take effect on the next event", async () => {
    const made = (await particle.createIntegration({ event: 'edit', product: 'prod-a', settings: { url: hookBase + '/before', json: { v: '{{{PARTICLE_EVENT_VALUE}}}' } }, auth: f.tokens.erin } as never)).body as unknown as { id: string };
    const edited = (await particle.editIntegration({ integrationId: made.id, product: 'prod-a', settings: { url: hookBase + '/after', noDefaults: true }, auth: f.tokens.erin } as never)).body as unknown as { url: string; noDefaults: boolean; json: unknown; event: string };
    assert.deepEqual([edited.url, edited.noDefaults, edited.json, edited.event], [hookBase + '/after', true, { v: '{{{PARTICLE_EVENT_VALUE}}}' }, 'edit'], 'what was not sent stays');
    await publish('edit', 'v1');
    await until('the delivery to the new URL', () => at('/after').length === 1);
    assert.deepEqual(JSON.parse(at('/after')[0].body), { v: 'v1' });
    assert.equal(at('/before').length, 0);
    await particle.deleteIntegration({ integrationId: made.id, product: 'prod-a', auth: f.tokens.erin } as never);
  });
  it('a long event name and a non-ASCII response: hook events past what devices take still reach the streams, in whole-character pieces of 512 bytes, and the bridge goes on', async () => {
    const text = '气温二十一度'.repeat(100); // 600 characters, 1,800 bytes
    answers.set('/long', text);
    const made = (await particle.createWebhook({ event: 'long', url: hookBase + '/long', product: 'prod-a', auth: f.tokens.erin } as never)).body as unknown as { id: string };
    const name = 'long' + 'x'.repeat(56); // 60 bytes: "hook-sent/" makes it 70, past the 64 a device takes
    await publish(name, 'x');
    await until('the last piece', () => seen.some((e) => e.name === 'hook-response/' + name + '/3'));
    assert.ok(seen.some((e) => e.name === 'hook-sent/' + name));
    const got = seen.filter((e) => e.name.startsWith('hook-response/' + name + '/'));
    assert.deepEqual(got.map((e) => Buffer.byteLength(e.data)), [510, 510, 510, 270]);
    assert.equal(got.map((e) => e.data).join(''), text);
    answers.delete('/long');
    // Still delivering.
    await publish('long', 'short');
    await until('the next delivery', () => seen.some((e) => e.name === 'hook-sent/long'));
    await particle.deleteWebhook({ hookId: made.id, product: 'prod-a', auth: f.tokens.erin } as never);
  });
  it("an event whose data cannot make a request gets a hook-error but is not held against the endpoint: one device's data cannot disable the integration", async () => {
    // Three sections over the data's array: 100 items make a million steps, past the render limit.
    const made = (await particle.createWebhook({ event: 'odd', url: hookBase + '/odd/{{#a}}{{#a}}{{#a}}x{{/a}}{{/a}}{{/a}}', product: 'prod-a', auth: f.tokens.erin } as never)).body as unknown as { id: string };
    const heavy = JSON.stringify({ a: Array.from({ length: 100 }, (_, i) => i % 10) });
    for (let n = 0; n < 4; n++) await publish('odd', heavy); // more than disableAfter (3)
    await until('four hook-errors', () => seen.filter((e) => e.name === 'hook-error/odd/0').length === 4);
    assert.match(seen.find((e) => e.name === 'hook-error/odd/0')!.data, /^the request could not be made: the template takes more than \d+ steps/);
    const got = (await (await fetch(base + '/v1/products/prod-a/integrations/' + made.id, { headers: { authorization: 'Bearer ' + f.tokens.carol } })).json()) as { disabled: boolean; errors_in_a_row: number };
    assert.deepEqual([got.disabled, got.errors_in_a_row], [false, 0]);
    await publish('odd', JSON.stringify({ a: [1] }));
    await until('a delivery with data that renders', () => at('/odd/x').length === 1);
    await particle.deleteWebhook({ hookId: made.id, product: 'prod-a', auth: f.tokens.erin } as never);
  });

  it('a header that the data would break (a line break) is the same: a hook-error, not a failure counted (before, four such events disabled the integration)', async () => {
    const mk = await fetch(base + '/v1/products/prod-a/integrations', {
      method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': 'application/json' }, body: JSON.stringify({ event: 'hdr', url: hookBase + '/hdr', headers: { 'X-V': '{{{v}}}' } }),
    });
    const made = (await mk.json()) as { id: string };
    for (let n = 0; n < 4; n++) await publish('hdr', JSON.stringify({ v: 'a\r\nX-Injected: 1' }));
    await until('four hook-errors', () => seen.filter((e) => e.name === 'hook-error/hdr/0').length === 4);
    assert.equal(seen.find((e) => e.name === 'hook-error/hdr/0')!.data, 'the request could not be made: header X-V holds a line break or a character a header cannot carry once filled in');
    assert.equal(at('/hdr').length, 0, 'nothing sent');
    const got = (await (await fetch(base + '/v1/products/prod-a/integrations/' + made.id, { headers: { authorization: 'Bearer ' + f.tokens.carol } })).json()) as { disabled: boolean; errors_in_a_row: number };
    assert.deepEqual([got.disabled, got.errors_in_a_row], [false, 0]);
    await publish('hdr', JSON.stringify({ v: 'fine' }));
    await until('a delivery with a header that holds', () => at('/hdr').length === 1);
    assert.equal(at('/hdr')[0].headers['x-v'], 'fine');
    await particle.deleteWebhook({ hookId: made.id, product: 'prod-a', auth: f.tokens.erin } as never);
  });

  it("a product whose endpoint hangs holds only its share of the slots: another product's webhook is delivered meanwhile; a deleted webhook's queued deliveries and retries are dropped", async () => {
    const hanging = (await particle.createWebhook({ event: 'stall', url: hookBase + '/hang', product: 'prod-a', auth: f.tokens.erin } as never)).body as unknown as { id: string };
    const other = (await particle.createWebhook({ event: 'quick', url: hookBase + '/quick', product: 'prod-b', auth: f.tokens.bob } as never)).body as unknown as { id: string };
    for (let n = 0; n < 6; n++) await publish('stall', String(n));
    await until('product A\'s two slots taken', () => at('/hang').length === 2);
    const b1 = await device(f.port, B1);
    try {
      await b1.publishAsync(topics.device.event(B1, 'quick'), Buffer.from(encode('event', { data: 'b', ttl: 60 })), { qos: 1 });
      // Before, A's six deliveries (three attempts of 1 s each) held every slot and B's waited behind them.
      await until("product B's delivery", () => at('/quick').length === 1);
      assert.equal(seen.filter((e) => e.name.startsWith('hook-error/stall')).length, 0, "while A's first attempts still hang");
    } finally {
      b1.end(true);
    }
    // Deleted with four deliveries queued and two in flight: none of them is tried again (before, all went on, with the webhook's credentials).
    await particle.deleteWebhook({ hookId: hanging.id, product: 'prod-a', auth: f.tokens.erin } as never);
    const sent = at('/hang').length;
    await new Promise((r) => setTimeout(r, 2500)); // past the in-flight attempts' time limit (1 s) and their backoff
    assert.equal(at('/hang').length, sent, 'nothing sent after the delete');
    await particle.deleteWebhook({ hookId: other.id, product: 'prod-b', auth: f.tokens.bob } as never);
  });

  // Last: it gives alice a second personal product.
  it('one API publish into a personal space of two products is one event: each stream and each of the user\'s own webhooks get it once', async () => {
    await f.bridge.store.createProduct({ name: 'A second', slug: 'prod-a-second', ownerUserId: f.users.alice });
    const hook = (await particle.createWebhook({ event: 'once', url: hookBase + '/once', auth: f.tokens.alice } as never)).body as unknown as { id: string };
    const got = { mine: 0, all: 0 };
    const mine = (await particle.getEventStream({ deviceId: 'mine', name: 'once', auth: f.tokens.alice })) as unknown as { on(e: string, fn: () => void): void; abort(): void };
    const all = (await particle.getEventStream({ name: 'once', auth: f.tokens.alice })) as unknown as { on(e: string, fn: () => void): void; abort(): void };
    mine.on('event', () => got.mine++);
    all.on('event', () => got.all++);
    try {
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await particle.publishEvent({ name: 'once/api', data: 'z', auth: f.tokens.alice } as never)).body.ok, true);
      await until('the delivery', () => at('/once').length === 1 && got.mine === 1 && got.all === 1);
      await new Promise((r) => setTimeout(r, 300));
      // Before, one per personal product: two of each.
      assert.deepEqual([at('/once').length, got.mine, got.all], [1, 1, 1]);
    } finally {
      mine.abort();
      all.abort();
      await particle.deleteWebhook({ hookId: hook.id, auth: f.tokens.alice } as never);
    }
  });
});

describe('webhooks at a stop', function () {
  this.timeout(30000);
  it('gives the deliveries queued or in flight drainMs to finish before the bridge closes (before, a SIGTERM dropped them all)', async () => {
    const got: string[] = [];
    const slow = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => setTimeout(() => (got.push(body), res.end('ok')), 300));
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
    const url = 'http://127.0.0.1:' + (slow.address() as AddressInfo).port + '/slow';
    const g = await startFixture({ httpPort: 0, webhooks: { ...defaultWebhookOptions, concurrency: 1, productConcurrency: 1, allowTargets: ['127.0.0.1'], drainMs: 10_000 }, mqtt: { eventRate: { perSecond: 1000, burst: 1000 } } as never });
    let closed = false;
    try {
      const made = await fetch('http://127.0.0.1:' + g.bridge.ports.http + '/v1/products/prod-a/integrations', {
        method: 'POST', headers: { authorization: 'Bearer ' + g.tokens.erin, 'content-type': 'application/json' }, body: JSON.stringify({ event: 'stop', url }),
      });
      assert.equal(made.status, 201);
      const a1 = await device(g.port, A1);
      for (let n = 0; n < 4; n++) await a1.publishAsync(topics.device.event(A1, 'stop'), Buffer.from(encode('event', { data: String(n), ttl: 60 })), { qos: 1 });
      a1.end(true);
      // One slot, 300 ms each: three of the four are still queued when the stop begins.
      await g.close();
      closed = true;
      assert.equal(got.length, 4, 'every acknowledged event delivered before the close ended');
    } finally {
      if (!closed) await g.close();
      slow.closeAllConnections();
      slow.close();
    }
  });

  it('logs a full queue and a disabled webhook\'s dropped deliveries once per webhook every 10 s, with how many (before, a line each: up to 50 a second)', async () => {
    const lines: string[] = [];
    const hang = createServer(() => undefined); // never answers: the deliveries stay in flight and queued
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', () => r()));
    const url = 'http://127.0.0.1:' + (hang.address() as AddressInfo).port + '/hang';
    const g = await startFixture({
      httpPort: 0, logLevel: 'info', logOutput: { write: (l) => void lines.push(l) },
      webhooks: { ...defaultWebhookOptions, concurrency: 1, productConcurrency: 1, queueLimit: 100, productQueueLimit: 3, allowTargets: ['127.0.0.1'], timeoutMs: 300, drainMs: 0 },
      mqtt: { eventRate: { perSecond: 1000, burst: 1000 } } as never,
    });
    const logged = (msg: string) => lines.map((l) => JSON.parse(l) as { msg: string; dropped?: number }).filter((l) => l.msg === msg);
    try {
      const api = 'http://127.0.0.1:' + g.bridge.ports.http + '/v1/products/prod-a/integrations';
      const made = await fetch(api, { method: 'POST', headers: { authorization: 'Bearer ' + g.tokens.erin, 'content-type': 'application/json' }, body: JSON.stringify({ event: 'flood', url }) });
      const id = ((await made.json()) as { id: string }).id;
      const a1 = await device(g.port, A1);
      for (let n = 0; n < 12; n++) await a1.publishAsync(topics.device.event(A1, 'flood'), Buffer.from(encode('event', { data: String(n), ttl: 60 })), { qos: 1 });
      a1.end(true);
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(logged('webhooks: queue full, deliveries dropped').map((l) => l.dropped), [1], lines.join('\n'));
      const off = await fetch(api + '/' + id, { method: 'PUT', headers: { authorization: 'Bearer ' + g.tokens.erin, 'content-type': 'application/json' }, body: JSON.stringify({ disabled: true }) });
      assert.equal(off.status, 200);
      // The one in flight times out (300 ms); then the queued ones are found disabled, and dropped.
      for (let i = 0; i < 150 && logged('webhooks: the integration was deleted or disabled; its queued deliveries are dropped').length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(logged('webhooks: the integration was deleted or disabled; its queued deliveries are dropped').map((l) => l.dropped), [1], lines.join('\n'));
    } finally {
      hang.closeAllConnections();
      hang.close();
      await g.close();
    }
  });
});
