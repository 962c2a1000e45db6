/**
 * Organizations, against a real bridge (HTTP on loopback, a real SQLite file,
 * real MQTT clients): a personal product moved into an org with its
 * Administrator's consent (each role's access before and after, the org
 * cascade, the personal collaborators who keep their roles, the audit entry,
 * live MQTT sessions deciding afresh), consent refused, missing, withdrawn;
 * the spaces every listing answers for; handing an org over, only by its Owner.
 *
 * Product A (alice's): carol View-only, dave Support, erin Developer on its own team.
 * Org Acme (olga its Owner): adam Administrator, devon Developer, sue Support,
 * vic View-only, alice Developer, dave Administrator. Otto is on nothing.
 */
import assert from 'node:assert/strict';
import { decode, encode, topics } from '@flotilla/protocol';
import type { MqttClient } from 'mqtt';
import { A1, A2, app, device, startFixture, type Fixture } from '../helpers/bridge-fixture.js';
import { openStream, type OpenStream } from '../helpers/sse.js';

type Who = 'alice' | 'carol' | 'dave' | 'erin' | 'olga' | 'adam' | 'devon' | 'sue' | 'vic' | 'otto';
type Level = 'none' | 'viewer' | 'support' | 'developer' | 'administrator' | 'owner';

const ICCID = '89012608823100000009';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('organizations: product transfer, spaces, ownership', function () {
  this.timeout(60000);
  let f: Fixture;
  let base: string;
  const tokens = {} as Record<Who, string>;
  const ids = {} as Record<Who, string>;
  const clients: MqttClient[] = [];
  let groupSeq = 0;

  async function api(method: string, path: string, who: Who | null, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(base + path, {
      method,
      headers: { ...(who ? { authorization: 'Bearer ' + tokens[who] } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  /** Whether the guard let the request through: anything but 401, 403 or 404. */
  const passed = (status: number) => status !== 401 && status !== 403 && status !== 404;

  /**
   * The highest level of the matrix a user reaches on product A, probed with
   * one action per level (lowest role that may take it): settings.view,
   * sim.limit, group.create, billing.view, billing.manage. A 404 on the first is no role at all.
   */
  async function levelOnA(who: Who): Promise<Level> {
    const view = await api('GET', '/v1/products/prod-a', who);
    if (view.status === 404) return 'none';
    assert.equal(view.status, 200, who + ' views');
    if (!passed((await api('PUT', '/v1/products/prod-a/sims/' + ICCID, who, { mb_limit: 10 })).status)) return 'viewer';
    if (!passed((await api('POST', '/v1/products/prod-a/groups', who, { name: 'g' + ++groupSeq })).status)) return 'support';
    if (!passed((await api('GET', '/v1/products/prod-a/usage', who)).status)) return 'developer';
    if (!passed((await api('PUT', '/v1/products/prod-a/billing', who, { name: 'Probe' })).status)) return 'administrator';
    return 'owner';
  }

  async function levels(): Promise<Record<Who, Level>> {
    const out = {} as Record<Who, Level>;
    for (const who of Object.keys(tokens) as Who[]) out[who] = await levelOnA(who);
    return out;
  }

  const slugs = (list: { slug: string }[]) => list.map((p) => p.slug).sort();

  before(async () => {
    f = await startFixture({ httpPort: 0 });
    base = 'http://127.0.0.1:' + f.bridge.ports.http;
    const s = f.bridge.store;
    for (const who of ['alice', 'carol', 'dave', 'erin'] as const) ids[who] = f.users[who];
    for (const who of ['olga', 'adam', 'devon', 'sue', 'vic', 'otto'] as const) ids[who] = (await s.createUser(who, who + '-password')).id;
    for (const who of Object.keys(ids) as Who[]) {
      tokens[who] = (await s.issueToken({ subject: { kind: 'user', id: ids[who] }, clientId: 'test', scopes: [], ttlSeconds: 3600 })).token;
    }
    const acme = await s.createOrg('Acme', ids.olga);
    for (const [who, role] of [['adam', 'administrator'], ['devon', 'developer'], ['sue', 'support'], ['vic', 'viewer'], ['alice', 'developer'], ['dave', 'administrator']] as const) {
      await s.addOrgMember(acme.id, ids[who], role);
    }
    await s.createProduct({ name: 'Acme Tracker', slug: 'acme-tracker', orgId: acme.id });
    await s.addSims(f.products.A, [ICCID]);
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await f.close();
  });

  it('refuses a transfer request that is malformed, not the Owner\'s, or to an org the Owner is not on', async () => {
    assert.equal((await api('POST', '/v1/products/prod-a/transfers', 'alice', {})).status, 400);
    assert.equal((await api('POST', '/v1/products/prod-a/transfers', 'alice', { org: 42 })).status, 400);
    assert.equal((await api('POST', '/v1/products/prod-a/transfers', 'alice', { org: 'no-such-org' })).body.error, 'Organization not found');
    // bob's org: alice is not on its team, so it answers as if it did not exist.
    await f.bridge.store.createOrg('Bob Works', f.users.bob);
    assert.equal((await api('POST', '/v1/products/prod-a/transfers', 'alice', { org: 'bob-works' })).status, 404);
    // Only the product's Owner asks (billing.manage): not its Developer, not a View-only member, not a stranger.
    assert.equal((await api('POST', '/v1/products/prod-a/transfers', 'erin', { org: 'acme' })).status, 403);
    assert.equal((await api('POST', '/v1/products/prod-a/transfers', 'carol', { org: 'acme' })).status, 403);
    assert.equal((await api('POST', '/v1/products/prod-a/transfers', 'olga', { org: 'acme' })).status, 404);
    // An org's product is not moved again.
    assert.equal((await api('POST', '/v1/products/acme-tracker/transfers', 'olga', { org: 'acme' })).status, 409);
    assert.deepEqual((await api('GET', '/v1/products/prod-a/transfers', 'alice')).body.transfers, []);
  });

  it('keeps a product personal until an org Administrator consents; refused and withdrawn requests change nothing', async () => {
    const before = await levels();
    // A Developer of the org asks: the request waits for an Administrator.
    const asked = await api('POST', '/v1/products/prod-a/transfers', 'alice', { org: 'acme' });
    assert.equal(asked.status, 201, JSON.stringify(asked.body));
    assert.deepEqual([asked.body.transfer.state, asked.body.transfer.org, asked.body.transfer.requested_by], ['pending', 'acme', 'alice']);
    const id = asked.body.transfer.id as string;
    assert.equal((await api('POST', '/v1/products/prod-a/transfers', 'alice', { org: 'acme' })).status, 409, 'one pending request at a time');
    assert.equal((await api('GET', '/v1/products/prod-a', 'olga')).status, 404, 'consent missing: still alice\'s alone');
    // Who may consent: the org's Administrators and Owner; not a Developer or a View-only member; a stranger does not see the org.
    assert.equal((await api('PUT', '/v1/orgs/acme/transfers/' + id, 'devon', { accept: true })).status, 403);
    assert.equal((await api('PUT', '/v1/orgs/acme/transfers/' + id, 'vic', { accept: true })).status, 403);
    assert.equal((await api('PUT', '/v1/orgs/acme/transfers/' + id, 'otto', { accept: true })).status, 404);
    assert.equal((await api('GET', '/v1/orgs/acme/transfers', 'devon')).status, 403);
    const listed = await api('GET', '/v1/orgs/acme/transfers', 'adam');
    assert.deepEqual(listed.body.transfers.map((t: { id: string; product: string }) => [t.id, t.product]), [[id, 'prod-a']]);
    // Bad consent bodies, and another org's view of the transfer.
    assert.equal((await api('PUT', '/v1/orgs/acme/transfers/' + id, 'adam', {})).status, 400);
    assert.equal((await api('PUT', '/v1/orgs/acme/transfers/' + id, 'adam', { accept: 'perhaps' })).status, 400);
    assert.equal((await api('PUT', '/v1/orgs/bob-works/transfers/' + id, 'alice', { accept: true })).status, 404, 'not on bob\'s org');
    assert.equal((await api('PUT', '/v1/orgs/acme/transfers/nope', 'adam', { accept: true })).body.error, 'Transfer not found');
    // Refused.
    const refused = await api('PUT', '/v1/orgs/acme/transfers/' + id, 'adam', { accept: false });
    assert.deepEqual([refused.status, refused.body.transfer.state, refused.body.transfer.decided_by], [200, 'declined', 'adam']);
    assert.equal((await api('PUT', '/v1/orgs/acme/transfers/' + id, 'adam', { accept: true })).status, 409, 'a declined request is closed');
    // Withdrawn by the Owner before anyone consents.
    const again = (await api('POST', '/v1/products/prod-a/transfers', 'alice', { org: 'acme' })).body.transfer.id as string;
    assert.equal((await api('DELETE', '/v1/products/prod-a/transfers/' + again, 'erin')).status, 403);
    assert.equal((await api('DELETE', '/v1/products/prod-a/transfers/' + again, 'alice')).body.transfer.state, 'cancelled');
    assert.equal((await api('PUT', '/v1/orgs/acme/transfers/' + again, 'adam', { accept: true })).status, 409);
    assert.deepEqual(await levels(), before, 'nobody\'s access changed');
    const states = (await api('GET', '/v1/products/prod-a/transfers', 'alice')).body.transfers.map((t: { state: string }) => t.state);
    assert.deepEqual(states.sort(), ['cancelled', 'declined']);
    const audit = await f.bridge.store.auditLog({ resourceKind: 'product', resourceId: f.products.A, action: 'product.transfer.declined' });
    assert.equal(audit.length, 1);
  });

  it('moves the product on consent: each role before and after, the org cascade, collaborators kept, live sessions, the audit entry', async () => {
    const s = f.bridge.store;
    // Live MQTT: olga's app watches every device; a1 is connected. Before the move she may not see a1's events.
    const a1 = await device(f.port, A1);
    clients.push(a1);
    const watcher = await app(f.port, 'olga-app', tokens.olga);
    clients.push(watcher);
    const seen: string[] = [];
    watcher.on('message', (topic, payload) => {
      const m = decode(payload);
      if (m.kind === 'event' && topic === topics.device.event(A1, 'temp')) seen.push(String(m.data));
    });
    await watcher.subscribeAsync(topics.filter.deviceEvents(), { qos: 1 });
    // And an event stream of hers, open across the move (its decisions were cached per product: before, it stayed silent).
    const stream = await openStream(base + '/v1/events/temp', tokens.olga);
    await a1.publishAsync(topics.device.event(A1, 'temp'), Buffer.from(encode('event', { data: 'before', ttl: 60 })), { qos: 1 });
    await sleep(200);
    assert.deepEqual(seen, []);
    assert.ok(!stream.text.includes('before'), stream.text);

    const before = await levels();
    assert.deepEqual(before, {
      alice: 'owner', carol: 'viewer', dave: 'support', erin: 'developer',
      olga: 'none', adam: 'none', devon: 'none', sue: 'none', vic: 'none', otto: 'none',
    });
    assert.deepEqual(slugs((await api('GET', '/v1/user/products', 'alice')).body.products), ['prod-a']);

    const id = (await api('POST', '/v1/products/prod-a/transfers', 'alice', { org: 'acme' })).body.transfer.id as string;
    const done = await api('PUT', '/v1/orgs/acme/transfers/' + id, 'adam', { accept: true });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.deepEqual([done.body.transfer.state, done.body.transfer.decided_by], ['accepted', 'adam']);
    assert.deepEqual(done.body.kept_product_members.map((m: { username: string; role: string }) => [m.username, m.role]).sort(), [['carol', 'View-only'], ['erin', 'Developer']]);
    assert.deepEqual(done.body.removed_product_members.map((m: { username: string; role: string }) => [m.username, m.role]), [['dave', 'Support']]);

    // After: the org's roles cascade (its Owner is the product's Owner), personal collaborators keep theirs,
    // dave's org role replaces his product role, alice reaches it as the org's Developer she is.
    assert.deepEqual(await levels(), {
      alice: 'developer', carol: 'viewer', dave: 'administrator', erin: 'developer',
      olga: 'owner', adam: 'administrator', devon: 'developer', sue: 'support', vic: 'viewer', otto: 'none',
    });
    const product = (await s.getProduct('prod-a'))!;
    assert.deepEqual([product.ownerUserId, product.orgId], [null, (await s.getOrg('acme'))!.id]);
    // People only: the product's API user stays with it and has no role.
    const team = ((await api('GET', '/v1/products/prod-a/team', 'vic')).body.team as { username: string; role: { id: string } | null; inherited: boolean }[]).filter(
      (m): m is { username: string; role: { id: string }; inherited: boolean } => m.role !== null,
    );
    const own = team.filter((m) => !m.inherited).map((m) => [m.username, m.role.id]);
    const inherited = team.filter((m) => m.inherited).map((m) => [m.username, m.role.id]);
    assert.deepEqual(own, [['erin', 'developer'], ['carol', 'viewer']]);
    assert.deepEqual(inherited, [['olga', 'owner'], ['adam', 'administrator'], ['dave', 'administrator'], ['alice', 'developer'], ['devon', 'developer'], ['sue', 'support'], ['vic', 'viewer']]);

    // The transfer is in the audit log, naming who asked, who consented and what became of the team.
    const entries = await s.auditLog({ action: 'product.transfer', resourceKind: 'product', resourceId: f.products.A });
    assert.equal(entries.length, 1);
    assert.deepEqual([entries[0].actorId, entries[0].allowed], [ids.adam, true]);
    assert.match(entries[0].reason, new RegExp(`moved from user ${ids.alice} to org .*asked by ${ids.alice}, accepted by ${ids.adam}`));
    assert.match(entries[0].reason, /kept product roles: (carol viewer, erin developer|erin developer, carol viewer); replaced by org roles: dave support/);

    // The live session decides afresh: a1's events now reach the org's Owner.
    await a1.publishAsync(topics.device.event(A1, 'temp'), Buffer.from(encode('event', { data: 'after', ttl: 60 })), { qos: 1 });
    for (let i = 0; i < 50 && (seen.length === 0 || !stream.text.includes('"after"')); i++) await sleep(20);
    assert.deepEqual(seen, ['after']);
    assert.ok(stream.text.includes('"data":"after"'), stream.text);
    stream.close();
    // Done is done.
    assert.equal((await api('PUT', '/v1/orgs/acme/transfers/' + id, 'adam', { accept: true })).status, 409);
    assert.equal((await api('POST', '/v1/products/prod-a/transfers', 'olga', { org: 'acme' })).status, 409, 'already the org\'s');
  });

  it('an org Administrator moving their own product consents by asking', async () => {
    const created = await api('POST', '/v1/user/products', 'adam', { name: 'Adam Lab', slug: 'adam-lab' });
    assert.equal(created.status, 201);
    const moved = await api('POST', '/v1/products/adam-lab/transfers', 'adam', { org: 'acme' });
    assert.equal(moved.status, 201);
    assert.deepEqual([moved.body.transfer.state, moved.body.transfer.decided_by], ['accepted', 'adam']);
    assert.equal((await api('GET', '/v1/products/adam-lab', 'vic')).status, 200, 'the org\'s View-only member now sees it');
    assert.equal((await s().auditLog({ action: 'product.transfer', resourceId: String(created.body.product.id) })).length, 1);
  });

  it('lists by space: personal products and SIMs apart from each org\'s; org devices by role', async () => {
    const home = (await api('POST', '/v1/user/products', 'alice', { name: 'Alice Home', slug: 'alice-home' })).body.product.id as number;
    assert.deepEqual(slugs((await api('GET', '/v1/user/products', 'alice')).body.products), ['alice-home'], 'the moved product left the personal space');
    assert.deepEqual(slugs((await api('GET', '/v1/user/products', 'erin')).body.products), [], 'a collaborator on an org product: not personal');
    assert.deepEqual(slugs((await api('GET', '/v1/orgs/acme/products', 'alice')).body.products), ['acme-tracker', 'adam-lab', 'prod-a']);
    assert.equal((await api('GET', '/v1/orgs/acme/products', 'erin')).status, 404, 'a product collaborator is not in the org\'s space');
    assert.equal((await api('GET', '/v1/orgs/acme/products', 'otto')).status, 404);
    // Both spaces side by side: the switcher lists the orgs, each space lists its own.
    const orgs = (await api('GET', '/v1/orgs', 'alice')).body.organizations.map((o: { slug: string; role: string }) => [o.slug, o.role]);
    assert.deepEqual(orgs, [['acme', 'developer']]);
    const all = slugs((await api('GET', '/v1/products', 'alice')).body.products);
    assert.deepEqual(all, ['acme-tracker', 'adam-lab', 'alice-home', 'prod-a'], 'the all-spaces listing has both');
    // Devices of the org's space.
    const devices = (await api('GET', '/v1/orgs/acme/devices', 'vic')).body.devices.map((d: { id: string }) => d.id).sort();
    assert.deepEqual(devices, [A1, A2].sort());
    assert.equal((await api('GET', '/v1/orgs/acme/devices', 'otto')).status, 404);
    // Listed as a product's devices are: pages, filters, sort, meta.
    const page2 = (await api('GET', '/v1/orgs/acme/devices?per_page=1&page=2&sortAttr=deviceId', 'vic')).body;
    assert.deepEqual([page2.devices.map((d: { id: string }) => d.id), page2.meta], [[[A1, A2].sort()[1]], { total_pages: 2 }]);
    assert.deepEqual((await api('GET', '/v1/orgs/acme/devices?deviceId=' + A2.slice(0, 6), 'vic')).body.devices.map((d: { id: string }) => d.id), [A2]);
    const personal = (await api('GET', '/v1/devices', 'alice')).body.map((d: { id: string }) => d.id);
    assert.ok(!personal.includes(A1) && !personal.includes(A2), 'the org\'s devices are not in alice\'s personal device list: ' + personal);
    // SIMs: prod-a's SIM is in the org's space now, not in alice's personal one.
    assert.deepEqual((await api('GET', '/v1/orgs/acme/sims', 'sue')).body.sims.map((x: { iccid: string }) => x.iccid), [ICCID]);
    assert.deepEqual((await api('GET', '/v1/sims', 'alice')).body.sims, []);
    assert.deepEqual((await api('GET', '/v1/sims', 'erin')).body.sims, [], 'erin\'s access to prod-a is in the org\'s space');
    await f.bridge.store.addSims(home, ['89014103211118510720']);
    assert.deepEqual((await api('GET', '/v1/sims', 'alice')).body.sims.map((x: { iccid: string }) => x.iccid), ['89014103211118510720']);
    assert.deepEqual((await api('GET', '/v1/orgs/acme/sims', 'alice')).body.sims.map((x: { iccid: string }) => x.iccid), [ICCID]);
  });

  it('keeps events to their space: /v1/devices/events streams and publishes the personal space only', async () => {
    const streams: OpenStream[] = [];
    const open = async (path: string, who: Who) => {
      const s = await openStream(base + path, tokens[who]);
      streams.push(s);
      return s;
    };
    try {
      const personal = await open('/v1/devices/events', 'alice');
      const org = await open('/v1/orgs/acme/events', 'alice');
      // Every path particle-api-js's getEventStream makes from org, product and deviceId ("mine" or an ID): before, these four were 404.
      const builtByApiJs = await Promise.all(['/v1/orgs/acme/products/prod-a/events/org-', '/v1/orgs/acme/products/prod-a/devices/' + A1 + '/events', '/v1/orgs/acme/devices/events/org-', '/v1/products/prod-a/devices/events'].map((p) => open(p, 'alice')));
      // A device event and an API publish of the org's product: its space only.
      const a1 = await device(f.port, A1);
      clients.push(a1);
      await a1.publishAsync(topics.device.event(A1, 'org-device'), Buffer.from(encode('event', { data: '1', ttl: 60 })), { qos: 1 });
      assert.equal((await api('POST', '/v1/products/prod-a/events', 'alice', { name: 'org-api', data: 'x' })).status, 200);
      // A personal publish: alice's personal product (alice-home) only, never the org's streams.
      assert.equal((await api('POST', '/v1/devices/events', 'alice', { name: 'personal-api', data: 'y' })).status, 200);
      for (let i = 0; i < 150 && !(org.text.includes('event: org-api') && org.text.includes('event: org-device') && personal.text.includes('event: personal-api')); i++) await sleep(20);
      assert.ok(org.text.includes('event: org-device') && org.text.includes('event: org-api'), org.text);
      assert.ok(!org.text.includes('personal-api'), 'a personal publish reached the org: ' + org.text);
      assert.ok(personal.text.includes('event: personal-api'), personal.text);
      assert.ok(!/event: org-/.test(personal.text), 'the personal stream got the org\'s events: ' + personal.text);
      for (const s of builtByApiJs) assert.ok(s.text.includes('event: org-device'), s.text);
      // A product named within an org must be that org's.
      const elsewhere = await fetch(base + '/v1/orgs/acme/products/alice-home/events', { headers: { authorization: 'Bearer ' + tokens.alice } });
      assert.equal(elsewhere.status, 404);
      await elsewhere.body?.cancel();
      // erin's only product is in the org now: nothing personal to publish into.
      assert.equal((await api('POST', '/v1/devices/events', 'erin', { name: 'x' })).status, 403);
    } finally {
      for (const s of streams) s.close();
    }
  });

  it('puts a device a user claimed in an org\'s product in their personal space: GET /v1/devices and /v1/devices/events, until unclaimed', async () => {
    const mine = async () => (await api('GET', '/v1/devices', 'alice')).body.map((d: { id: string }) => d.id);
    const claim = await api('POST', '/v1/devices', 'alice', { id: A2 });
    assert.equal(claim.status, 200, JSON.stringify(claim.body));
    // Before, the org's devices were left out whoever had claimed them.
    const listed = await mine();
    assert.ok(listed.includes(A2) && !listed.includes(A1), 'alice\'s claimed device only: ' + listed);
    const one = (await api('GET', '/v1/devices', 'alice')).body.find((d: { id: string }) => d.id === A2);
    assert.equal(one.owner, 'alice');
    const personal = await openStream(base + '/v1/devices/events', tokens.alice);
    try {
      const a1 = await device(f.port, A1);
      const a2 = await device(f.port, A2);
      clients.push(a1, a2);
      await a1.publishAsync(topics.device.event(A1, 'not-hers'), Buffer.from(encode('event', { data: '1', ttl: 60 })), { qos: 1 });
      await a2.publishAsync(topics.device.event(A2, 'hers'), Buffer.from(encode('event', { data: '2', ttl: 60 })), { qos: 1 });
      for (let i = 0; i < 150 && !personal.text.includes('event: hers'); i++) await sleep(20);
      assert.ok(personal.text.includes('event: hers'), personal.text);
      assert.ok(!personal.text.includes('not-hers'), 'an org device alice did not claim reached her personal stream: ' + personal.text);
    } finally {
      personal.close();
    }
    assert.equal((await api('DELETE', '/v1/devices/' + A2, 'alice')).status, 200);
    assert.ok(!(await mine()).includes(A2), 'unclaimed: out of the personal space again');
    // Another member of the org does not see it in theirs.
    assert.ok(!(await api('GET', '/v1/devices', 'vic')).body.some((d: { id: string }) => d.id === A2));
  });

  it('hands an org over only by its Owner, to a member of its team; the former Owner stays an Administrator', async () => {
    assert.equal((await api('PUT', '/v1/orgs/acme/owner', 'adam', { username: 'adam' })).status, 403, 'an Administrator cannot take it');
    assert.equal((await api('PUT', '/v1/orgs/acme/owner', 'devon', { username: 'devon' })).status, 403);
    assert.equal((await api('PUT', '/v1/orgs/acme/owner', 'otto', { username: 'otto' })).status, 404);
    assert.equal((await api('PUT', '/v1/orgs/acme/owner', 'olga', {})).status, 400);
    assert.equal((await api('PUT', '/v1/orgs/acme/owner', 'olga', { username: 'otto' })).status, 404, 'not on the team');
    assert.equal((await api('PUT', '/v1/orgs/acme/owner', 'olga', { username: 'nobody' })).status, 404);
    assert.equal((await api('PUT', '/v1/orgs/acme/owner', 'olga', { username: 'olga' })).status, 404, 'already the Owner');
    const handed = await api('PUT', '/v1/orgs/acme/owner', 'olga', { username: 'adam' });
    assert.equal(handed.status, 200, JSON.stringify(handed.body));
    assert.equal(handed.body.organization.owner, ids.adam);
    const team = (await api('GET', '/v1/orgs/acme/team', 'vic')).body.team.map((m: { username: string; role: { id: string } }) => [m.username, m.role.id]);
    assert.deepEqual(team.slice(0, 3), [['adam', 'owner'], ['dave', 'administrator'], ['olga', 'administrator']]);
    assert.equal(team.filter((m: string[]) => m[0] === 'adam').length, 1, 'adam is listed once, as Owner');
    assert.equal((await api('PUT', '/v1/orgs/acme/owner', 'olga', { username: 'olga' })).status, 403, 'olga no longer owns it');
    // The org's products follow: adam manages their billing, olga only views it now.
    assert.equal(await levelOnA('adam'), 'owner');
    assert.equal(await levelOnA('olga'), 'administrator');
    const entry = (await f.bridge.store.auditLog({ action: 'org.owner' }))[0];
    assert.match(entry.reason, new RegExp(`from ${ids.olga} to ${ids.adam}`));
    assert.equal((await api('DELETE', '/v1/orgs/acme/team/adam', 'olga')).status, 403, 'the new Owner cannot be removed');
  });

  function s() {
    return f.bridge.store;
  }
});
