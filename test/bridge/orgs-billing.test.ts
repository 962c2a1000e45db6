/**
 * An org's billing and usage against traffic this test makes with real MQTT
 * clients on a real bridge: a device of the org's product sends a hello,
 * events, vitals and answers variable reads, function calls and a ping (from
 * the HTTP API and from an MQTT app); events are sent to it; carrier figures
 * are recorded for SIMs; a whitelisted member's personal product adds its
 * own. Every figure of the usage views must equal what was sent. Then who may
 * see and change billing information and the whitelist.
 *
 * Org Acme (olga its Owner): adam Administrator, devon Developer, alice View-only;
 * product acme-sensors in it, with device D1. Product A (alice's, personal): device a1.
 */
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { decode, encode, topics } from '@flotilla/protocol';
import { A1, app, connect, device, startFixture, type Fixture } from '../helpers/bridge-fixture.js';

type Who = 'alice' | 'bob' | 'erin' | 'olga' | 'adam' | 'devon' | 'otto';

const D1 = 'd1d1d1d1d1d1d1d1d1d1d1d1';
const SIM_ORG = '89012608823100000017';
const SIM_A = '89012608823100000025';
const DAY_MS = 86_400_000;
const today = () => new Date().toISOString().slice(0, 10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('organizations: billing and usage', function () {
  this.timeout(60000);
  let f: Fixture;
  let base: string;
  const tokens = {} as Record<Who, string>;
  const clients: MqttClient[] = [];
  /** What D1 and a1 sent, counted here: every publish of each, and their bytes. */
  const sent = { d1: { messages: 0, bytes: 0 }, a1: { messages: 0, bytes: 0 } };
  /** Cloud events D1 received. */
  const received: string[] = [];
  let d1: MqttClient;

  async function api(method: string, path: string, who: Who, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(base + path, {
      method,
      headers: { authorization: 'Bearer ' + tokens[who], ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  /** A device's publish, counted. */
  async function publish(c: MqttClient, who: 'd1' | 'a1', topic: string, payload: Uint8Array): Promise<void> {
    const buf = Buffer.from(payload);
    sent[who].messages++;
    sent[who].bytes += buf.length;
    await c.publishAsync(topic, buf, { qos: 1 });
  }

  before(async () => {
    // Events as fast as the test sends them: the rate limit has its own tests.
    f = await startFixture({ httpPort: 0, callTimeoutMs: 3000, mqtt: { eventRate: { perSecond: 1000, burst: 1000 } } as never });
    base = 'http://127.0.0.1:' + f.bridge.ports.http;
    const s = f.bridge.store;
    const ids: Record<string, string> = { ...f.users };
    for (const who of ['olga', 'adam', 'devon', 'otto'] as const) ids[who] = (await s.createUser(who, who + '-password')).id;
    for (const who of ['alice', 'bob', 'erin', 'olga', 'adam', 'devon', 'otto'] as const) {
      tokens[who] = (await s.issueToken({ subject: { kind: 'user', id: ids[who] }, clientId: 'test', scopes: [], ttlSeconds: 3600 })).token;
    }
    const acme = await s.createOrg('Acme', ids.olga);
    for (const [who, role] of [['adam', 'administrator'], ['devon', 'developer'], ['alice', 'viewer']] as const) await s.addOrgMember(acme.id, ids[who], role);
    const product = await s.createProduct({ name: 'Acme Sensors', slug: 'acme-sensors', orgId: acme.id });
    await s.createDevice({ id: D1, productId: product.id });
    await s.setDeviceSecret(D1, 'secret-d1');
    await s.addSims(product.id, [SIM_ORG]);
    await s.addSims(f.products.A, [SIM_A]);

    // D1: a raw MQTT device that answers every request and keeps the cloud events it gets.
    d1 = await connect(f.port, { clientId: D1, username: D1, password: 'secret-d1' });
    clients.push(d1);
    await d1.subscribeAsync(topics.filter.deviceInbox(D1), { qos: 1 });
    d1.on('message', (_topic, payload) => {
      const m = decode(payload);
      if (m.kind === 'cloudEvent') received.push(m.name);
      if (m.kind !== 'request') return;
      const value = m.op === 'var' ? 21.5 : m.op === 'call' ? 1 : null;
      void publish(d1, 'd1', topics.device.reply(D1), encode('reply', { id: m.id, status: 'ok', value }));
    });
    await publish(d1, 'd1', topics.device.hello(D1), encode('hello', {
      agent: '0.1.0', firmware: 1, product: product.id, variables: [{ name: 'temp', type: 'double' }], functions: ['led'], subscriptions: ['cmd'],
      bootReason: 'power_down', ota: { slot: 0, trial: false, rolledBackFrom: null },
    }));
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await f.close();
  });

  it('counts data operations, messages, bytes, devices and SIM data exactly as the traffic went', async () => {
    // 7 events from the device: 7 data operations.
    for (let i = 0; i < 7; i++) await publish(d1, 'd1', topics.device.event(D1, 'temp'), encode('event', { data: String(20 + i), ttl: 60 }));
    // Vitals: a message, not a data operation.
    await publish(d1, 'd1', topics.device.vitals(D1), encode('vitals', { values: { 'device.system.uptime': 5 } }));
    // 3 variable reads and 2 function calls through the API: 5 data operations; a ping: none.
    for (let i = 0; i < 3; i++) assert.equal((await api('GET', '/v1/devices/' + D1 + '/temp', 'devon')).body.result, 21.5);
    for (let i = 0; i < 2; i++) assert.equal((await api('POST', '/v1/devices/' + D1 + '/led', 'devon', { arg: 'on' })).body.return_value, 1);
    assert.equal((await api('PUT', '/v1/devices/' + D1 + '/ping', 'devon')).body.online, true);
    // 2 events published to the product reach the device's `cmd` subscription: 2 data operations; one it did not subscribe to: none.
    assert.equal((await api('POST', '/v1/products/acme-sensors/events', 'devon', { name: 'cmd/go', data: 'x' })).status, 200);
    assert.equal((await api('POST', '/v1/products/acme-sensors/events', 'devon', { name: 'cmd/stop' })).status, 200);
    assert.equal((await api('POST', '/v1/products/acme-sensors/events', 'devon', { name: 'other' })).status, 200);
    // Over MQTT, an operator app: a variable read (answered) and a cloud event: 2 data operations.
    const olgaApp = await app(f.port, 'olga-app', tokens.olga);
    clients.push(olgaApp);
    await olgaApp.subscribeAsync(topics.app.reply('olga-app'), { qos: 1 });
    const replied = new Promise<void>((resolve) => olgaApp.once('message', () => resolve()));
    await olgaApp.publishAsync(topics.cloud.request(D1), Buffer.from(encode('request', { id: 1, op: 'var', name: 'temp' })), { qos: 1 });
    await replied;
    await olgaApp.publishAsync(topics.cloud.event(D1), Buffer.from(encode('cloudEvent', { name: 'cmd/app', data: null })), { qos: 1 });
    for (let i = 0; i < 50 && received.length < 3; i++) await sleep(20);
    assert.deepEqual(received, ['cmd/go', 'cmd/stop', 'cmd/app']);
    const d1Ops = 7 + 5 + 2 + 2;

    // a1, in alice's personal product: 4 events.
    const a1 = await device(f.port, A1);
    clients.push(a1);
    for (let i = 0; i < 4; i++) await publish(a1, 'a1', topics.device.event(A1, 'temp'), encode('event', { data: 'a' + i, ttl: 60 }));

    // SIM data, as a carrier reports it: a later figure for a day replaces the earlier one.
    const yesterday = new Date(Date.now() - DAY_MS).toISOString().slice(0, 10);
    const put = (product: string, iccid: string, body: unknown, who: Who = 'devon') => api('PUT', `/v1/products/${product}/sims/${iccid}/data_usage`, who, body);
    assert.equal((await put('acme-sensors', SIM_ORG, { date: today(), bytes: 999 })).status, 200);
    assert.equal((await put('acme-sensors', SIM_ORG, { date: today(), bytes: 1_500_000 })).body.mbs_used, 1.5);
    assert.equal((await put('acme-sensors', SIM_ORG, { date: yesterday, mbs_used: 0.5 })).body.bytes, 500_000);
    assert.equal((await put('prod-a', SIM_A, { date: today(), bytes: 250_000 }, 'alice')).status, 200);
    const simUsage = (await api('GET', `/v1/products/acme-sensors/sims/${SIM_ORG}/data_usage`, 'alice')).body;
    assert.deepEqual(simUsage.usage_by_day.map((d: { date: string; mbs_used: number; mbs_used_cumulative: number }) => [d.date, d.mbs_used, d.mbs_used_cumulative]), [[yesterday, 0.5, 0.5], [today(), 1.5, 2]]);
    assert.equal(simUsage.metered, true);

    await f.bridge.broker.flush();
    // The org product's own view: exactly the traffic above.
    const product = await api('GET', '/v1/products/acme-sensors/usage', 'adam');
    assert.equal(product.status, 200, JSON.stringify(product.body));
    assert.deepEqual(product.body.totals, {
      devices: 1, messages: sent.d1.messages, bytes: sent.d1.bytes, data_operations: d1Ops, sim_data_bytes: 2_000_000, sim_data_mb: 2,
    });
    assert.deepEqual(product.body.billed_to, { kind: 'org', id: (await f.bridge.store.getOrg('acme'))!.id, slug: 'acme', name: 'Acme', whitelisted: false });
    const days = product.body.usage as { date: string; devices: number; sim_data_bytes: number; messages: number }[];
    assert.deepEqual(days.find((d) => d.date === yesterday), { date: yesterday, devices: 0, messages: 0, bytes: 0, data_operations: 0, sim_data_bytes: 500_000, sim_data_mb: 0.5 });
    assert.equal(days.reduce((n, d) => n + d.devices, 0), 1, 'one device, active on one day');

    // The org's view before alice is whitelisted: its product only.
    const before = (await api('GET', '/v1/orgs/acme/usage', 'adam')).body;
    assert.deepEqual(before.totals, product.body.totals);
    assert.deepEqual(before.products.map((p: { slug: string; space: string }) => [p.slug, p.space]), [['acme-sensors', 'org']]);

    // Whitelisted, alice's personal usage is billed to the org and shows in its view.
    assert.equal((await api('POST', '/v1/orgs/acme/whitelist', 'olga', { username: 'alice' })).status, 201);
    const after = (await api('GET', '/v1/orgs/acme/usage', 'adam')).body;
    assert.deepEqual(after.totals, {
      devices: 1 + 2, messages: sent.d1.messages + sent.a1.messages, bytes: sent.d1.bytes + sent.a1.bytes,
      data_operations: d1Ops + 4, sim_data_bytes: 2_250_000, sim_data_mb: 2.25,
    });
    const prodA = after.products.find((p: { slug: string }) => p.slug === 'prod-a');
    assert.deepEqual([prodA.space, prodA.owner, prodA.totals.data_operations, prodA.totals.messages, prodA.totals.sim_data_bytes], ['personal', 'alice', 4, 4, 250_000]);
    assert.deepEqual(after.whitelisted_users, ['alice']);
    const aliceView = (await api('GET', '/v1/products/prod-a/usage', 'alice')).body;
    assert.deepEqual([aliceView.billed_to.slug, aliceView.billed_to.whitelisted, aliceView.totals.data_operations], ['acme', true, 4]);
    assert.equal((await api('GET', '/v1/user', 'alice')).body.billed_to_org, 'acme');
    // What alice's product used before the whitelisting (today) is hers, not the org's: a carrier figure for yesterday.
    assert.equal((await put('prod-a', SIM_A, { date: yesterday, bytes: 70_000 }, 'alice')).status, 200);
    const window = `?start_date=${yesterday}&end_date=${today()}`;
    assert.equal((await api('GET', '/v1/products/prod-a/usage' + window, 'alice')).body.totals.sim_data_bytes, 320_000, "the product's own view has it");
    const org = (await api('GET', '/v1/orgs/acme/usage' + window, 'adam')).body;
    assert.equal(org.products.find((p: { slug: string }) => p.slug === 'prod-a').totals.sim_data_bytes, 250_000, 'not the org\'s: before the whitelisting');
    assert.deepEqual(org.usage.find((d: { date: string }) => d.date === yesterday).sim_data_bytes, 500_000, "yesterday's org figures are the org product's alone");
    // A period with no traffic is empty; a malformed one is refused.
    assert.deepEqual((await api('GET', '/v1/orgs/acme/usage?start_date=2001-01-01&end_date=2001-01-31', 'olga')).body.usage, []);
    assert.equal((await api('GET', '/v1/orgs/acme/usage?start_date=2030-01-01&end_date=2020-01-01', 'olga')).status, 400);
    assert.equal((await api('GET', '/v1/orgs/acme/usage?end_date=soon', 'olga')).status, 400);
  });

  it('shows usage to the org\'s Administrators and Owner only', async () => {
    assert.equal((await api('GET', '/v1/orgs/acme/usage', 'olga')).status, 200);
    assert.equal((await api('GET', '/v1/orgs/acme/usage', 'adam')).status, 200);
    assert.equal((await api('GET', '/v1/orgs/acme/usage', 'devon')).status, 403);
    assert.equal((await api('GET', '/v1/orgs/acme/usage', 'alice')).status, 403);
    assert.equal((await api('GET', '/v1/orgs/acme/usage', 'otto')).status, 404);
    assert.equal((await api('GET', '/v1/orgs/no-such-org/usage', 'olga')).status, 404);
    assert.equal((await api('GET', '/v1/products/acme-sensors/usage', 'devon')).status, 403);
    const refusal = (await f.bridge.store.auditLog({ action: 'billing.view', resourceKind: 'orgProducts', allowed: false, limit: 3 }))[0];
    assert.equal(refusal.status, 404, 'the last refusal, audited');
  });

  it('lets the Owner manage billing information, Administrators view it, nobody else', async () => {
    const info = { name: 'Acme Inc.', email: 'billing@acme.example', address: '1 Main St', country: 'fr', tax_id: 'FR 123 456' };
    assert.equal((await api('PUT', '/v1/orgs/acme/billing', 'adam', info)).status, 403, 'an Administrator views, does not manage');
    assert.equal((await api('PUT', '/v1/orgs/acme/billing', 'devon', info)).status, 403);
    assert.equal((await api('PUT', '/v1/orgs/acme/billing', 'otto', info)).status, 404);
    const set = await api('PUT', '/v1/orgs/acme/billing', 'olga', { billing_info: info });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual({ ...set.body.billing_info, updated_at: undefined }, { ...info, country: 'FR', updated_at: undefined, updated_by: 'olga' });
    assert.equal((await api('GET', '/v1/orgs/acme/billing', 'adam')).body.billing_info.name, 'Acme Inc.');
    assert.equal((await api('GET', '/v1/orgs/acme/billing', 'devon')).status, 403);
    assert.equal((await api('GET', '/v1/orgs/acme/billing', 'alice')).status, 403);
    // A field is cleared with null; the others stay.
    assert.equal((await api('PUT', '/v1/orgs/acme/billing', 'olga', { tax_id: null })).body.billing_info.tax_id, null);
    assert.equal((await api('GET', '/v1/orgs/acme/billing', 'olga')).body.billing_info.email, 'billing@acme.example');
    // Bad input: named, and nothing kept.
    for (const [body, error] of [
      [{}, 'Send at least one'], [{ email: 'not-mail' }, 'e-mail'], [{ country: 'France' }, 'two-letter'], [{ vat: 'x' }, 'Unknown billing field vat'],
      [{ name: 7 }, 'must be text'], [{ name: 'x'.repeat(256) }, 'longer than 255'], [{ tax_id: '<script>' }, 'characters'],
    ] as const) {
      const r = await api('PUT', '/v1/orgs/acme/billing', 'olga', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.ok(String(r.body.error).includes(error), r.body.error);
    }
    assert.equal((await api('GET', '/v1/orgs/acme/billing', 'olga')).body.billing_info.name, 'Acme Inc.');
    // An org product shows the org's account, read-only; a personal product has its own, its Owner's to manage.
    const orgProduct = (await api('GET', '/v1/products/acme-sensors/billing', 'adam')).body;
    assert.deepEqual([orgProduct.billed_to.slug, orgProduct.editable, orgProduct.billing_info.name], ['acme', false, 'Acme Inc.']);
    assert.equal((await api('PUT', '/v1/products/acme-sensors/billing', 'olga', { name: 'x' })).status, 409);
    assert.equal((await api('PUT', '/v1/products/acme-sensors/billing', 'adam', { name: 'x' })).status, 403);
    assert.equal((await api('PUT', '/v1/products/prod-b/billing', 'bob', { name: 'Bob', country: 'DE' })).body.billing_info.country, 'DE');
    assert.equal((await api('GET', '/v1/products/prod-b/billing', 'bob')).body.editable, true);
    assert.equal((await api('PUT', '/v1/products/prod-a/billing', 'erin', { name: 'x' })).status, 403, 'a Developer of the product');
    assert.equal((await api('PUT', '/v1/products/prod-a/billing', 'alice', { name: 'x' })).status, 409, 'alice is whitelisted: the org pays');
  });

  it('whitelists only members of the org\'s team, by its Owner, one paying org per user; leaving the team ends it', async () => {
    assert.equal((await api('GET', '/v1/orgs/acme/whitelist', 'adam')).body.whitelisted_users.map((u: { username: string }) => u.username).join(), 'alice');
    assert.equal((await api('GET', '/v1/orgs/acme/whitelist', 'devon')).status, 403);
    assert.equal((await api('POST', '/v1/orgs/acme/whitelist', 'adam', { username: 'devon' })).status, 403, 'the Owner decides');
    assert.equal((await api('POST', '/v1/orgs/acme/whitelist', 'olga', {})).status, 400);
    assert.equal((await api('POST', '/v1/orgs/acme/whitelist', 'olga', { username: 'otto' })).status, 404, 'not on the team');
    assert.equal((await api('POST', '/v1/orgs/acme/whitelist', 'olga', { username: 'alice' })).status, 409, 'already');
    // Another org cannot also pay for alice.
    const s = f.bridge.store;
    const other = await s.createOrg('Other', f.users.bob);
    await s.addOrgMember(other.id, f.users.alice, 'viewer');
    const twice = await api('POST', '/v1/orgs/other/whitelist', 'bob', { username: 'alice' });
    assert.deepEqual([twice.status, twice.body.error.includes('another org')], [409, true]);
    assert.equal((await api('DELETE', '/v1/orgs/acme/whitelist/nobody', 'olga')).status, 404);
    assert.equal((await api('DELETE', '/v1/orgs/acme/whitelist/alice', 'adam')).status, 403);
    // Whitelisting devon, then removing him from the team, ends his whitelisting too.
    assert.equal((await api('POST', '/v1/orgs/acme/whitelist', 'olga', { username: 'devon' })).status, 201);
    assert.equal((await api('DELETE', '/v1/orgs/acme/team/devon', 'olga')).status, 204);
    assert.equal(await s.billingOrgOf((await s.findUser('devon'))!.id), null);
    // Removing alice from the whitelist takes her personal product out of the org's bill.
    assert.equal((await api('DELETE', '/v1/orgs/acme/whitelist/alice', 'olga')).status, 204);
    assert.deepEqual((await api('GET', '/v1/orgs/acme/usage', 'olga')).body.products.map((p: { slug: string }) => p.slug), ['acme-sensors']);
    assert.equal((await api('GET', '/v1/products/prod-a/billing', 'alice')).body.billed_to.kind, 'user');
  });

  it('records SIM data only for a product\'s own SIM, from a Developer up, with a clear error for each bad figure', async () => {
    const put = (body: unknown, who: Who = 'adam', iccid = SIM_ORG) => api('PUT', `/v1/products/acme-sensors/sims/${iccid}/data_usage`, who, body);
    for (const [body, error] of [
      [{ bytes: 1 }, 'date must be'], [{ date: '2024-13-40', bytes: 1 }, 'date must be'], [{ date: 'today', bytes: 1 }, 'date must be'],
      [{ date: today() }, 'Send bytes'], [{ date: today(), bytes: 1, mbs_used: 1 }, 'Send bytes'],
      [{ date: today(), bytes: -1 }, 'whole number'], [{ date: today(), bytes: 1.5 }, 'whole number'], [{ date: today(), bytes: 'lots' }, 'whole number'],
      [{ date: today(), mbs_used: -2 }, 'whole number'], [{ date: today(), bytes: 2e12 }, 'from 0 to'],
      // Days that do not exist (Date.parse rolls them over to March), and values Number() would read as a figure.
      [{ date: '2024-02-30', bytes: 1 }, 'date must be'], [{ date: '2023-02-29', bytes: 1 }, 'date must be'],
      [{ date: today(), bytes: null }, 'whole number'], [{ date: today(), bytes: ' ' }, 'whole number'], [{ date: today(), bytes: '' }, 'whole number'],
      [{ date: today(), bytes: [7] }, 'whole number'], [{ date: today(), bytes: true }, 'whole number'], [{ date: today(), bytes: '0x10' }, 'whole number'],
      [{ date: today(), mbs_used: null }, 'whole number'],
      [{ date: '2099-01-01', bytes: 1 }, 'date is in the future'],
    ] as const) {
      const r = await put(body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.ok(String(r.body.error).includes(error), JSON.stringify(body) + ': ' + r.body.error);
    }
    assert.equal((await put({ date: today(), bytes: 1 }, 'adam', SIM_A)).status, 404, 'another product\'s SIM');
    assert.equal((await put({ date: today(), bytes: 1 }, 'alice')).status, 403, 'a View-only member');
    assert.equal((await put({ date: today(), bytes: 1 }, 'otto')).status, 404);
    // Nothing was kept: today's figure is still the carrier's last good one.
    const days = (await api('GET', `/v1/products/acme-sensors/sims/${SIM_ORG}/data_usage`, 'olga')).body.usage_by_day as { date: string; bytes: number }[];
    assert.equal(days.find((d) => d.date === today())!.bytes, 1_500_000);
    assert.ok(!days.some((d) => d.date.startsWith('2024-0') || d.date.startsWith('2023-0')), 'no day of a refused date');
    // A leap day is a day, and digits as a form sends them are a figure.
    assert.equal((await put({ date: '2024-02-29', bytes: '5' })).status, 200);
  });
});
