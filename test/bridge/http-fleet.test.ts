/**
 * The operator API beyond single devices, with particle-api-js where it has
 * the call and fetch otherwise, against a real bridge and the real agent on
 * a1: products and orgs, teams (invite, accept, change role, remove, API
 * users), customers (three ways in), OAuth clients, groups, publishing
 * events to devices, import/claim/remove, diagnostics, fleet health, tokens,
 * sign-up, the OpenAPI description.
 */
import assert from 'node:assert/strict';
import { connect as connectTcp } from 'node:net';
import Particle from 'particle-api-js';
import type { VmDevice } from '@flotilla/simulator';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { incomingDir } from '../../bridge/src/ota/files.js';
import { routes } from '../../bridge/src/http/routes/index.js';
import { RESET_REASONS } from '@flotilla/protocol';
import { A1, A2, B1, app, closed, startFixture, type Fixture, startDemoAgent, type ParticleError } from '../helpers/bridge-fixture.js';

describe('HTTP API: products, teams, customers, groups, events, diagnostics', function () {
  this.timeout(30000);
  let f: Fixture;
  let base: string;
  let particle: InstanceType<typeof Particle>;
  let agent: VmDevice;

  /** fetch with a token; JSON in and out. */
  async function api(method: string, path: string, token: string | null, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(base + path, {
      method,
      headers: { ...(token ? { authorization: 'Bearer ' + token } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  const refused = (p: Promise<unknown>, status: number) =>
    assert.rejects(p, (e: ParticleError) => {
      assert.equal(e.statusCode, status, JSON.stringify(e.body));
      return true;
    });

  async function login(username: string, password: string): Promise<string> {
    return ((await particle.login({ username, password })).body as { access_token: string }).access_token;
  }

  before(async () => {
    f = await startFixture({ httpPort: 0, callTimeoutMs: 2000 });
    base = 'http://127.0.0.1:' + f.bridge.ports.http;
    particle = new Particle({ baseUrl: base });
    agent = await startDemoAgent(f);
  });
  after(async () => {
    agent.stop();
    await f.close();
  });

  it('creates personal and org products, lists them by space, and edits settings by role', async () => {
    const created = await api('POST', '/v1/user/products', f.tokens.bob, { product: { name: 'Weather Station', description: 'outdoor' } });
    assert.equal(created.status, 201);
    assert.deepEqual([created.body.product.name, created.body.product.slug, created.body.product.description], ['Weather Station', 'weather-station-v1', 'outdoor']);
    const mine = (await api('GET', '/v1/user/products', f.tokens.bob)).body.products.map((p: { slug: string }) => p.slug).sort();
    assert.deepEqual(mine, ['prod-b', 'weather-station-v1']);
    const listed = (await particle.listProducts({ auth: f.tokens.carol })).body as unknown as { products: { slug: string }[] };
    assert.deepEqual(listed.products.map((p) => p.slug), ['prod-a'], 'carol sees the product she is on');
    assert.equal((await particle.getProduct({ product: 'prod-a', auth: f.tokens.carol })).body.product.id, Number(f.products.A));
    await refused(particle.getProduct({ product: 'prod-a', auth: f.tokens.bob }), 404);
    // Settings: an Administrator edits them; a Developer may not.
    assert.equal((await api('PUT', '/v1/products/prod-a', f.tokens.erin, { settings: { color: 'red' } })).status, 403);
    const edited = await api('PUT', '/v1/products/prod-a', f.tokens.alice, { settings: { color: 'red' }, description: 'kitchen sensors' });
    assert.deepEqual([edited.body.product.settings.color, edited.body.product.description], ['red', 'kitchen sensors']);
    // Orgs: the creator is the Owner; org products are listed in the org's space.
    const org = await api('POST', '/v1/orgs', f.tokens.bob, { name: 'Bob Industries' });
    assert.equal(org.status, 201);
    const p = await api('POST', '/v1/orgs/bob-industries/products', f.tokens.bob, { name: 'Tracker', slug: 'tracker' });
    assert.equal(p.status, 201);
    assert.deepEqual((await api('GET', '/v1/orgs/bob-industries/products', f.tokens.bob)).body.products.map((x: { slug: string }) => x.slug), ['tracker']);
    // The product object names its org the same way on every route: by id.
    const orgId = org.body.organization.id;
    assert.deepEqual(
      [(await api('GET', '/v1/orgs/bob-industries/products', f.tokens.bob)).body.products[0].org, (await api('GET', '/v1/products/tracker', f.tokens.bob)).body.product.org, p.body.product.org],
      [orgId, orgId, orgId],
    );
    assert.ok(!(await api('GET', '/v1/user/products', f.tokens.bob)).body.products.some((x: { slug: string }) => x.slug === 'tracker'), 'org products are not in the personal space');
    assert.equal((await api('GET', '/v1/orgs/bob-industries/products', f.tokens.alice)).status, 404);
    assert.deepEqual((await api('POST', '/v1/orgs', f.tokens.alice, { name: 'Bob Industries' })).status, 409);
  });

  it('invites to a product team, the invitee accepts, roles change within the rules, and removal ends access at once', async () => {
    const team = (await particle.listTeamMembers({ product: 'prod-a', auth: f.tokens.carol })).body as unknown as { team: { username: string; role: { name: string } | null }[] };
    assert.deepEqual(
      team.team.filter((m) => m.role).map((m) => [m.username, m.role!.name]),
      [['alice', 'Administrator (Owner)'], ['erin', 'Developer'], ['dave', 'Support'], ['carol', 'View-only']],
      'by role, highest first',
    );
    const frank = await f.bridge.store.createUser('frank@example.com', 'frank-password');
    const inviteBody = (await particle.inviteTeamMember({ username: 'frank@example.com', product: 'prod-a', auth: f.tokens.alice })).body as unknown as { invited: { id: string; role: { id: string } } };
    assert.equal(inviteBody.invited.role.id, 'viewer', 'View-only unless a role is given');
    // Not yet a member: the invitation waits for frank.
    const frankToken = await login('frank@example.com', 'frank-password');
    await refused(particle.listDevices({ product: 'prod-a', auth: frankToken }), 404);
    const invitations = (await api('GET', '/v1/user/invitations', frankToken)).body as { id: string }[];
    assert.equal(invitations.length, 1);
    assert.equal((await api('PUT', '/v1/user/invitations/' + invitations[0].id, f.tokens.carol, { accept: true })).status, 404, 'not carol\'s invitation');
    assert.equal((await api('PUT', '/v1/user/invitations/' + invitations[0].id, frankToken, { accept: true })).status, 200);
    assert.ok(((await particle.listDevices({ product: 'prod-a', auth: frankToken })).body as unknown as { devices: unknown[] }).devices.length >= 2);
    // Roles: a Developer cannot manage the team; nobody grants above their own role or the Owner role.
    assert.equal((await api('PUT', '/v1/products/prod-a/team/frank@example.com', f.tokens.erin, { role: 'support' })).status, 403);
    assert.equal((await api('PUT', '/v1/products/prod-a/team/frank@example.com', f.tokens.alice, { role: 'owner' })).status, 400);
    assert.equal((await api('PUT', '/v1/products/prod-a/team/frank@example.com', f.tokens.alice, { role: 'Support' })).status, 200);
    assert.equal((await api('PUT', '/v1/products/prod-a/team/alice', f.tokens.alice, { role: 'viewer' })).status, 403, 'the Owner keeps the role');
    assert.equal((await api('DELETE', '/v1/products/prod-a/team/alice', f.tokens.alice)).status, 403, 'the Owner cannot be removed');
    await particle.removeTeamMember({ username: 'frank@example.com', product: 'prod-a', auth: f.tokens.alice });
    await refused(particle.listDevices({ product: 'prod-a', auth: frankToken }), 404);
    assert.ok(frank.id);
    // Inviting the same address twice while pending is a conflict; an invitation can be withdrawn.
    await particle.inviteTeamMember({ username: 'zoe@example.com', product: 'prod-a', auth: f.tokens.alice });
    await refused(particle.inviteTeamMember({ username: 'zoe@example.com', product: 'prod-a', auth: f.tokens.alice }), 409);
    assert.equal((await api('DELETE', '/v1/products/prod-a/team/zoe@example.com', f.tokens.alice)).status, 204);
    await refused(particle.inviteTeamMember({ username: 'not-an-address', product: 'prod-a', auth: f.tokens.alice }), 400);
  });

  it('an invitation lapses when its sender may no longer invite with its role (removed or demoted since): no back door left behind', async () => {
    const s = f.bridge.store;
    for (const name of ['gina', 'gus']) {
      await s.createUser(name, name + '-password');
      await s.addProductMember(f.products.A, (await s.findUser(name))!.id, 'administrator');
    }
    const gina = await login('gina', 'gina-password');
    const gus = await login('gus', 'gus-password');
    const toHank = (await api('POST', '/v1/products/prod-a/team', gina, { username: 'hank@example.com', role: 'Administrator' })).body.invited;
    const toHal = (await api('POST', '/v1/products/prod-a/team', gus, { username: 'hal@example.com', role: 'Developer' })).body.invited;
    const toHugo = (await api('POST', '/v1/products/prod-a/team', gus, { username: 'hugo@example.com', role: 'View-only' })).body.invited;
    assert.equal((await api('DELETE', '/v1/products/prod-a/team/gina', f.tokens.alice)).status, 204);
    assert.equal((await api('PUT', '/v1/products/prod-a/team/gus', f.tokens.alice, { role: 'Support' })).status, 200);
    for (const name of ['hank@example.com', 'hal@example.com', 'hugo@example.com']) await s.createUser(name, 'invitee-password');
    const lapsed = 'This invitation lapsed: whoever sent it may no longer invite to that team with that role. Ask the team for a new one';
    for (const [who, inv] of [['hank@example.com', toHank], ['hal@example.com', toHal]] as const) {
      const r = await api('PUT', '/v1/user/invitations/' + inv.id, await login(who, 'invitee-password'), { accept: true });
      assert.deepEqual([r.status, r.body.error], [409, lapsed], who);
    }
    // A Support member may invite no one: gus's View-only invitation lapsed too; an Administrator's new one stands.
    const hugo = await login('hugo@example.com', 'invitee-password');
    assert.equal((await api('PUT', '/v1/user/invitations/' + toHugo.id, hugo, { accept: true })).status, 409);
    const again = (await api('POST', '/v1/products/prod-a/team', f.tokens.alice, { username: 'hank@example.com', role: 'Administrator' })).body.invited;
    assert.equal((await api('PUT', '/v1/user/invitations/' + again.id, await login('hank@example.com', 'invitee-password'), { accept: true })).status, 200);
    for (const name of ['gus', 'hank@example.com']) assert.equal((await api('DELETE', '/v1/products/prod-a/team/' + name, f.tokens.alice)).status, 204);
  });

  it('an invitation to an address with no account goes to the account made under it, never to one renamed to it; an account\'s invitations follow its renames', async () => {
    const s = f.bridge.store;
    await s.createUser('ivy', 'ivy-password');
    const ivy = await login('ivy', 'ivy-password');
    const forCto = (await api('POST', '/v1/products/prod-a/team', f.tokens.alice, { username: 'new.cto@acme.example', role: 'Administrator' })).body.invited;
    const forIvy = (await api('POST', '/v1/products/prod-b/team', f.tokens.bob, { username: 'ivy', role: 'Viewer' })).body.invited;
    // ivy takes the address: before, she then saw and accepted the Administrator invitation made for someone else.
    assert.equal((await api('PUT', '/v1/user', ivy, { username: 'new.cto@acme.example', current_password: 'ivy-password' })).status, 200);
    const listed = (await api('GET', '/v1/user/invitations', ivy)).body as { id: string }[];
    assert.deepEqual(listed.map((i) => i.id), [forIvy.id], 'hers followed her; the one to the address is withdrawn');
    assert.equal((await api('PUT', '/v1/user/invitations/' + forCto.id, ivy, { accept: true })).status, 404);
    assert.equal((await api('PUT', '/v1/user/invitations/' + forIvy.id, ivy, { accept: true })).status, 200);
    assert.equal((await api('GET', '/v1/products/prod-a/team', ivy)).status, 404, 'not on the product she was not invited to');
    assert.equal((await api('DELETE', '/v1/products/prod-b/team/new.cto@acme.example', f.tokens.bob)).status, 204);
  });

  it('joins an org: the product team shows inherited org members, and the org membership replaces product memberships', async () => {
    const s = f.bridge.store;
    const owner = await s.createUser('olga', 'olga-password');
    const olga = await login('olga', 'olga-password');
    await api('POST', '/v1/orgs', olga, { name: 'Olga Co' });
    const product = (await api('POST', '/v1/orgs/olga-co/products', olga, { name: 'Olga Sensor', slug: 'olga-sensor' })).body.product;
    // carol is first on the org product's own team, then invited to the org as a Developer.
    await s.addProductMember(product.id, f.users.carol, 'viewer');
    const inv = (await api('POST', '/v1/orgs/olga-co/team', olga, { username: 'carol', role: 'Developer' })).body.invited;
    const accepted = await api('PUT', '/v1/user/invitations/' + inv.id, f.tokens.carol, { accept: true });
    assert.deepEqual(accepted.body.removed_product_memberships, [String(product.id)]);
    const team = (await api('GET', '/v1/products/olga-sensor/team', olga)).body.team as { username: string; role: { id: string }; inherited: boolean }[];
    assert.deepEqual(team.map((m) => [m.username, m.role.id, m.inherited]), [['olga', 'owner', true], ['carol', 'developer', true]]);
    assert.equal((await api('GET', '/v1/orgs/olga-co/team', f.tokens.carol)).status, 200);
    assert.equal((await api('POST', '/v1/orgs/olga-co/team', f.tokens.carol, { username: 'dave', role: 'viewer' })).status, 403, 'a Developer cannot manage the org team');
    // On the product's team, the org's people are changed where they are members (before: 404 "No team member", as for a stranger).
    const onProduct = async (method: string, who: string) => {
      const r = await api(method, '/v1/products/olga-sensor/team/' + who, olga, method === 'PUT' ? { role: 'viewer' } : undefined);
      return [r.status, r.body.error];
    };
    assert.deepEqual(await onProduct('PUT', 'olga'), [403, 'The Owner cannot be changed']);
    assert.deepEqual(await onProduct('DELETE', 'olga'), [403, 'The Owner cannot be removed']);
    assert.deepEqual(await onProduct('PUT', 'carol'), [409, "carol is on this product's team through its org: change their role on the org's team"]);
    assert.deepEqual(await onProduct('DELETE', 'carol'), [409, "carol is on this product's team through its org: change their role on the org's team"]);
    assert.deepEqual(await onProduct('DELETE', 'dave'), [404, 'No team member dave']);
    assert.ok(owner.id);
  });

  it('creates an API user with scopes; its token does what its scopes say and ends when it is deleted', async () => {
    assert.equal((await api('POST', '/v1/products/prod-a/team', f.tokens.erin, { friendly_name: 'ci', scopes: ['device.view'] })).status, 403, 'team.apiUsers needs an Administrator');
    assert.equal((await api('POST', '/v1/products/prod-a/team', f.tokens.alice, { friendly_name: 'ci', scopes: ['devices:list'] })).status, 400);
    const created = await api('POST', '/v1/products/prod-a/team', f.tokens.alice, { friendly_name: 'ci', scopes: ['device.view', 'device.variable'] });
    assert.equal(created.status, 201);
    assert.equal(created.body.created.is_programmatic, true);
    // Particle's shape: a username of its own, name+rnd@api.particle.io there, here in the reserved .invalid domain.
    const ci = created.body.created.username as string;
    assert.match(ci, /^ci\+[0-9a-f]{24}@api\.flotilla\.invalid$/);
    assert.equal(created.body.created.friendly_name, 'ci');
    const token = created.body.created.tokens[0].token as string;
    assert.equal((await api('GET', '/v1/products/prod-a/devices', token)).status, 200);
    assert.equal((await api('GET', '/v1/devices/' + A1 + '/temp', token)).body.result, 21.5);
    assert.equal((await api('POST', '/v1/devices/' + A1 + '/setLed', token, { arg: 'on' })).status, 403, 'no device.function scope');
    assert.equal((await api('GET', '/v1/products/prod-b/devices', token)).status, 404);
    const team = (await api('GET', '/v1/products/prod-a/team', f.tokens.alice)).body.team as { username: string; friendly_name?: string; is_programmatic: boolean }[];
    assert.ok(team.some((m) => m.username === ci && m.friendly_name === 'ci' && m.is_programmatic));
    // A friendly name that is a person's never names the person: DELETE …/team/:username takes the API user's own username.
    const named = await api('POST', '/v1/products/prod-a/team', f.tokens.alice, { friendly_name: 'erin', scopes: ['device.view'] });
    assert.equal(named.status, 201);
    assert.notEqual(named.body.created.username, 'erin');
    assert.equal((await api('DELETE', '/v1/products/prod-a/team/' + encodeURIComponent(named.body.created.username), f.tokens.alice)).status, 204);
    const after = (await api('GET', '/v1/products/prod-a/team', f.tokens.alice)).body.team as { username: string; is_programmatic: boolean }[];
    assert.ok(after.some((m) => m.username === 'erin' && !m.is_programmatic), 'the person erin is still on the team');
    assert.ok(!after.some((m) => m.username === named.body.created.username), 'the API user is gone');
    assert.equal((await api('DELETE', '/v1/products/prod-a/team/ci', f.tokens.alice)).status, 404, 'the friendly name is not a username');
    // No person may take an API user's username (a DELETE of it would remove the person instead).
    await assert.rejects(f.bridge.store.createUser(ci, 'password-1'), /usernames ending @api\.flotilla\.invalid are API users' own/);
    assert.equal((await api('DELETE', '/v1/products/prod-a/team/' + encodeURIComponent(ci), f.tokens.alice)).status, 204);
    assert.equal((await api('GET', '/v1/products/prod-a/devices', token)).status, 401);
  });

  it('lets an API user make API users only with scopes it holds itself; org scopes do not apply to a product\'s', async () => {
    const maker = (await api('POST', '/v1/products/prod-a/team', f.tokens.alice, { friendly_name: 'maker', scopes: ['team.apiUsers', 'device.view'] })).body.created;
    const token = maker.tokens[0].token as string;
    // Before, it made one with device.remove, settings.edit, team.manage...: everything it could not do itself.
    const above = await api('POST', '/v1/products/prod-a/team', token, { friendly_name: 'more', scopes: ['device.view', 'device.remove', 'settings.edit'] });
    assert.equal(above.status, 403);
    assert.equal(above.body.error, 'You may not grant scopes you do not hold yourself: device.remove, settings.edit');
    const same = await api('POST', '/v1/products/prod-a/team', token, { friendly_name: 'same', scopes: ['device.view'] });
    assert.equal(same.status, 201, 'what it holds, it may pass on');
    // An Administrator holds every product scope but none of an org's.
    const org = await api('POST', '/v1/products/prod-a/team', f.tokens.alice, { friendly_name: 'orgish', scopes: ['org.team.manage'] });
    assert.deepEqual([org.status, org.body.error], [400, 'Organization scopes do not apply to a product\'s API user: org.team.manage']);
    for (const u of [maker.username, same.body.created.username]) assert.equal((await api('DELETE', '/v1/products/prod-a/team/' + encodeURIComponent(u), f.tokens.alice)).status, 204);
    // An org's: one allowed only to make API users cannot make one that manages the org's team.
    const olga = await login('olga', 'olga-password');
    const orgMaker = (await api('POST', '/v1/orgs/olga-co/team', olga, { friendly_name: 'org-maker', scopes: ['org.apiUsers'] })).body.created;
    const orgAbove = await api('POST', '/v1/orgs/olga-co/team', orgMaker.tokens[0].token, { friendly_name: 'boss', scopes: ['org.team.manage'] });
    assert.deepEqual([orgAbove.status, orgAbove.body.error], [403, 'You may not grant scopes you do not hold yourself: org.team.manage']);
    // Product scopes on an org's API user reach its products: the Owner holds them all.
    assert.equal((await api('POST', '/v1/orgs/olga-co/team', olga, { friendly_name: 'fleet-reader', scopes: ['device.view', 'org.team.view'] })).status, 201);
    // The org space's devices and SIMs are decided by device.view and sim.view on its products (before, org.team.view, which
    // also shows the team: an API user given device.view alone was refused the org's device list).
    const viewer = async (scopes: string[]) => (await api('POST', '/v1/orgs/olga-co/team', olga, { friendly_name: 'only-' + scopes.join('-'), scopes })).body.created.tokens[0].token as string;
    const [devicesOnly, simsOnly, teamOnly] = [await viewer(['device.view']), await viewer(['sim.view']), await viewer(['org.team.view'])];
    assert.deepEqual([(await api('GET', '/v1/orgs/olga-co/devices', devicesOnly)).status, (await api('GET', '/v1/orgs/olga-co/sims', devicesOnly)).status], [200, 403]);
    assert.deepEqual([(await api('GET', '/v1/orgs/olga-co/devices', simsOnly)).status, (await api('GET', '/v1/orgs/olga-co/sims', simsOnly)).status], [403, 200]);
    assert.deepEqual([(await api('GET', '/v1/orgs/olga-co/devices', teamOnly)).status, (await api('GET', '/v1/orgs/olga-co/sims', teamOnly)).status], [403, 403]);
    // The org's products listed to it without their settings, which it may not view (before: every product's settings).
    await api('PUT', '/v1/products/olga-sensor', olga, { settings: { note: 'internal' } });
    const listedTo = async (token: string) => ((await api('GET', '/v1/orgs/olga-co/products', token)).body.products as { slug: string; settings: Record<string, unknown> }[]).find((p) => p.slug === 'olga-sensor')!.settings;
    assert.deepEqual(await listedTo(teamOnly), {});
    assert.equal((await listedTo(olga)).note, 'internal');
  });

  it('changes an API user\'s name and scopes with PUT …/team/:apiuser: new scopes rotate its token, and only within what the changer holds', async () => {
    const made = (await api('POST', '/v1/products/prod-a/team', f.tokens.alice, { friendly_name: 'reporter', scopes: ['device.view'] })).body.created;
    const path = '/v1/products/prod-a/team/' + encodeURIComponent(made.username);
    const old = made.tokens[0].token as string;
    // A new name alone keeps the token.
    const renamed = await api('PUT', path, f.tokens.alice, { friendly_name: 'Nightly reporter' });
    assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
    assert.deepEqual([renamed.body.updated.friendly_name, renamed.body.updated.scopes, renamed.body.updated.tokens], ['Nightly reporter', ['device.view'], undefined]);
    assert.equal((await api('GET', '/v1/products/prod-a/devices', old)).status, 200);
    // New scopes: a new token, the old one ends (before, 400 "role must be ...": scopes could only change by deleting the API user).
    const rescoped = await api('PUT', path, f.tokens.alice, { scopes: ['device.view', 'device.variable'] });
    assert.equal(rescoped.status, 200, JSON.stringify(rescoped.body));
    assert.deepEqual(rescoped.body.updated.scopes, ['device.view', 'device.variable']);
    const fresh = rescoped.body.updated.tokens[0].token as string;
    assert.equal((await api('GET', '/v1/products/prod-a/devices', old)).status, 401, 'the old token is revoked');
    assert.equal((await api('GET', '/v1/devices/' + A1 + '/temp', fresh)).body.result, 21.5);
    // Its username's name part follows the friendly name; the id part, which names it, stays (the old username still names it).
    const team = (await api('GET', '/v1/products/prod-a/team', f.tokens.alice)).body.team as { id?: string; username: string; friendly_name?: string; scopes?: string[] }[];
    assert.deepEqual(team.filter((m) => m.id === made.id).map((m) => [m.username, m.friendly_name, m.scopes]), [
      ['nightly-reporter+' + made.id + '@api.flotilla.invalid', 'Nightly reporter', ['device.view', 'device.variable']],
    ]);
    // Only with team.apiUsers, only scopes the changer holds, never an Owner-only one, and only this team's API users.
    assert.equal((await api('PUT', path, f.tokens.erin, { scopes: ['device.view'] })).status, 403, 'a Developer does not manage API users');
    const ownerOnly = await api('PUT', path, f.tokens.alice, { scopes: ['billing.manage'] });
    assert.deepEqual([ownerOnly.status, ownerOnly.body.error], [400, 'An API user never holds Owner-only scopes: billing.manage']);
    assert.equal((await api('PUT', path, f.tokens.alice, { scopes: [] })).status, 400);
    assert.equal((await api('PUT', '/v1/products/prod-a/team/nobody%2Bffffffffffffffffffffffff%40api.flotilla.invalid', f.tokens.alice, { scopes: ['device.view'] })).status, 404);
    const limited = (await api('POST', '/v1/products/prod-a/team', f.tokens.alice, { friendly_name: 'limited', scopes: ['team.apiUsers', 'device.view'] })).body.created;
    const beyond = await api('PUT', path, limited.tokens[0].token, { scopes: ['device.view', 'device.remove'] });
    assert.deepEqual([beyond.status, beyond.body.error], [403, 'You may not grant scopes you do not hold yourself: device.remove']);
    const holdsMore = await api('PUT', path, limited.tokens[0].token, { friendly_name: 'mine now' });
    assert.deepEqual([holdsMore.status, holdsMore.body.error], [403, 'You may not change an API user that holds scopes you do not hold yourself: device.variable']);
    for (const u of [made.username, limited.username]) assert.equal((await api('DELETE', '/v1/products/prod-a/team/' + encodeURIComponent(u), f.tokens.alice)).status, 204);
  });

  it('refuses Owner-only scopes to a new API user, and lets no API user change or remove a person', async () => {
    const billing = await api('POST', '/v1/products/prod-a/team', f.tokens.alice, { friendly_name: 'payer', scopes: ['billing.manage'] });
    assert.deepEqual([billing.status, billing.body.error], [400, 'An API user never holds Owner-only scopes: billing.manage']);
    // Before, team.manage made an API user an Administrator over people: it promoted a viewer and removed members.
    const manager = (await api('POST', '/v1/products/prod-a/team', f.tokens.alice, { friendly_name: 'manager', scopes: ['team.manage', 'team.view'] })).body.created;
    const t = manager.tokens[0].token as string;
    const promote = await api('PUT', '/v1/products/prod-a/team/carol', t, { role: 'administrator' });
    assert.deepEqual([promote.status, promote.body.error], [403, "Only a person changes a team member's role"]);
    // And it learns nothing of who is on the team (it may hold team.manage without team.view): a member and a stranger answer alike.
    assert.deepEqual((await api('PUT', '/v1/products/prod-a/team/nobody@example.com', t, { role: 'viewer' })).body.error, "Only a person changes a team member's role");
    const remove = await api('DELETE', '/v1/products/prod-a/team/dave', t);
    assert.deepEqual([remove.status, remove.body.error], [404, 'No team member dave']);
    assert.deepEqual((await api('DELETE', '/v1/products/prod-a/team/nobody@example.com', t)).body.error, 'No team member nobody@example.com');
    // Nor by inviting (before: 409 for a member, 400 for no such account, 403 for another user).
    for (const who of ['carol', 'nobody', 'bob']) assert.deepEqual((await api('POST', '/v1/products/prod-a/team', t, { username: who })).body.error, 'Only a person invites team members', who);
    // It removes API users, but none that holds more than it does.
    const stronger = (await api('POST', '/v1/products/prod-a/team', f.tokens.alice, { friendly_name: 'stronger', scopes: ['team.manage', 'device.remove'] })).body.created;
    const down = await api('DELETE', '/v1/products/prod-a/team/' + encodeURIComponent(stronger.username), t);
    assert.deepEqual([down.status, down.body.error], [403, 'You may not delete an API user that holds scopes you do not hold yourself: device.remove']);
    assert.equal((await api('DELETE', '/v1/products/prod-a/team/' + encodeURIComponent(stronger.username), f.tokens.alice)).status, 204);
    const roles = ((await api('GET', '/v1/products/prod-a/team', f.tokens.alice)).body.team as { username: string; role: { id: string } | null }[]).filter((m) => m.role !== null);
    assert.deepEqual(roles.filter((m) => m.username === 'carol' || m.username === 'dave').map((m) => [m.username, m.role!.id]).sort(), [['carol', 'viewer'], ['dave', 'support']]);
    assert.equal((await api('DELETE', '/v1/products/prod-a/team/' + encodeURIComponent(manager.username), f.tokens.alice)).status, 204);
  });

  it('creates customers with a product client (particle-api-js), logs them in three ways, and a customer reaches only their own devices', async () => {
    // A product OAuth client; its secret is shown once.
    const c = (await particle.createOAuthClient({ name: 'Kitchen App', type: 'installed', product: 'prod-a', auth: f.tokens.erin })).body as unknown as { client: { id: string; secret: string } };
    assert.ok(c.client.secret.length >= 32);
    const listed = (await particle.listOAuthClients({ product: 'prod-a', auth: f.tokens.carol })).body as unknown as { clients: { id: string; secret?: string }[] };
    assert.ok(listed.clients.some((x) => x.id === c.client.id && x.secret === undefined), 'listed without its secret');
    await refused(particle.createOAuthClient({ name: 'x', type: 'installed', product: 'prod-a', auth: f.tokens.carol }), 403);
    // Simple authentication: the app signs a customer up with its client credentials...
    const app = new Particle({ baseUrl: base, clientId: c.client.id, clientSecret: c.client.secret });
    const made = (await app.createCustomer({ email: 'dora@example.com', password: 'dora-password', product: 'prod-a' })).body as unknown as { access_token: string };
    assert.ok(made.access_token);
    await f.bridge.store.claimDevice(A2, (await f.bridge.store.findCustomer(f.products.A, 'dora@example.com'))!.id);
    // ... and in with the password grant through the same client.
    const dora = ((await app.login({ username: 'dora@example.com', password: 'dora-password' })).body as { access_token: string }).access_token;
    assert.deepEqual(((await particle.listDevices({ auth: dora })).body as unknown as { id: string }[]).map((d) => d.id), [A2]);
    await refused(particle.getDevice({ deviceId: A1, auth: dora }), 404);
    await refused(app.login({ username: 'dora@example.com', password: 'wrong' }), 400);
    // A wrong client secret cannot create customers.
    const impostor = new Particle({ baseUrl: base, clientId: c.client.id, clientSecret: 'nope' });
    await refused(impostor.createCustomer({ email: 'eve@example.com', password: 'x', product: 'prod-a' }), 401);
    // ... and is told so as OAuth tells a client (not as if an access token were wrong).
    const basic = 'Basic ' + Buffer.from(c.client.id + ':nope').toString('base64');
    const wrong = await fetch(base + '/v1/products/prod-a/customers', { method: 'POST', headers: { authorization: basic }, body: new URLSearchParams({ email: 'eve@example.com', password: 'x' }) });
    assert.deepEqual([wrong.status, await wrong.json()], [401, { error: 'invalid_client', error_description: 'Client authentication failed' }]);
    // Two-legged (the product's sign-in mode changed to it): the product's server creates a customer without a password and gets tokens for it.
    assert.equal((await api('PUT', '/v1/products/prod-a', f.tokens.alice, { settings: { customer_auth: 'two_legged' } })).status, 200);
    assert.equal((await api('POST', '/v1/products/prod-a/customers', f.tokens.erin, { email: 'ned@example.com', no_password: true })).status, 201);
    // With the server's client (a web client): the app's installed one may not speak for customers.
    const server = (await particle.createOAuthClient({ name: 'Kitchen Server', type: 'web', redirect_uri: 'https://kitchen.example/cb', product: 'prod-a', auth: f.tokens.erin } as never)).body as unknown as { client: { id: string; secret: string } };
    const fromApp = await fetch(base + '/oauth/token', { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'customer=ned@example.com', client_id: c.client.id, client_secret: c.client.secret }) });
    assert.deepEqual([fromApp.status, ((await fromApp.json()) as { error: string }).error], [400, 'unauthorized_client']);
    const form = new URLSearchParams({ grant_type: 'client_credentials', scope: 'customer=ned@example.com', client_id: server.client.id, client_secret: server.client.secret });
    const tok = await fetch(base + '/oauth/token', { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(tok.status, 200);
    const ned = ((await tok.json()) as { access_token: string }).access_token;
    assert.deepEqual((await api('GET', '/v1/devices', ned)).body, []);
    const noScope = await fetch(base + '/oauth/token', { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', client_id: c.client.id, client_secret: c.client.secret }) });
    assert.equal(noScope.status, 400);
    // The team sees its customers; deleting one ends its tokens.
    const customers = (await api('GET', '/v1/products/prod-a/customers', f.tokens.carol)).body.customers as { username: string; devices: string[] }[];
    // The client's credentials create customers and nothing more: an app holds them, so anyone who unpacks it does (before, they listed every customer).
    const clientBasic = 'Basic ' + Buffer.from(c.client.id + ':' + c.client.secret).toString('base64');
    assert.equal((await fetch(base + '/v1/products/prod-a/customers', { headers: { authorization: clientBasic } })).status, 403);
    assert.deepEqual(customers.find((x) => x.username === 'dora@example.com')!.devices, [A2]);
    assert.ok(customers.length >= 2, 'two customers or more to page through');
    const pages = (await api('GET', '/v1/products/prod-a/customers?per_page=1', f.tokens.carol)).body;
    assert.deepEqual([pages.customers.length, pages.meta.total_pages], [1, customers.length]);
    const last = (await api('GET', '/v1/products/prod-a/customers?per_page=1&page=' + customers.length, f.tokens.carol)).body;
    assert.equal(last.customers[0].username, customers[customers.length - 1].username);
    assert.equal((await api('DELETE', '/v1/products/prod-a/customers/dora@example.com', f.tokens.carol)).status, 403);
    assert.equal((await api('DELETE', '/v1/products/prod-a/customers/dora@example.com', f.tokens.erin)).status, 204);
    assert.equal((await api('GET', '/v1/devices', dora)).status, 401);
    assert.equal((await f.bridge.store.getDevice(A2))!.customerId, null, 'her device is unclaimed');
    await particle.deleteOAuthClient({ clientId: c.client.id, product: 'prod-a', auth: f.tokens.erin });
    await refused(app.login({ username: 'ned@example.com', password: 'x' }), 401);
  });

  it('manages device groups and assigns devices, one by one and in batches', async () => {
    assert.equal((await api('POST', '/v1/products/prod-a/groups', f.tokens.erin, { name: 'Kitchen', color: '#aabbcc' })).status, 201);
    assert.equal((await api('POST', '/v1/products/prod-a/groups', f.tokens.erin, { name: 'kitchen' })).status, 409);
    assert.equal((await api('POST', '/v1/products/prod-a/groups', f.tokens.erin, { name: 'bad name!' })).status, 400);
    assert.equal((await api('POST', '/v1/products/prod-a/groups', f.tokens.dave, { name: 'lab' })).status, 403);
    // Ids in any case, as elsewhere (an upper-case one was answered invalid).
    const batch = await api('PUT', '/v1/products/prod-a/devices', f.tokens.erin, { action: 'groups', devices: [A1.toUpperCase(), A2, B1], metadata: { add: ['kitchen', 'beta'] } });
    assert.deepEqual([batch.body.devices, batch.body.invalid_devices], [[A1, A2], [B1]], 'a device of another product is not touched');
    const groups = (await api('GET', '/v1/products/prod-a/groups', f.tokens.carol)).body.groups as { name: string; device_count: number }[];
    assert.deepEqual(groups.map((g) => [g.name, g.device_count]), [['beta', 2], ['kitchen', 2]]);
    // Particle's name filter: a part of the name, any case.
    const named = (await api('GET', '/v1/products/prod-a/groups?name=ET', f.tokens.carol)).body.groups as { name: string }[];
    assert.deepEqual(named.map((g) => g.name), ['beta']);
    assert.deepEqual((await api('GET', '/v1/products/prod-a/groups?name=none', f.tokens.carol)).body.groups, []);
    const one = await api('PUT', '/v1/products/prod-a/devices/' + A2, f.tokens.erin, { groups: ['beta'] });
    assert.deepEqual(one.body.groups, ['beta']);
    // A form's lists as a multipart body's: groups[] or a repeated name (all but the last were dropped).
    const formPut = (body: string) => fetch(base + '/v1/products/prod-a/devices/' + A2, { method: 'PUT', headers: { authorization: 'Bearer ' + f.tokens.erin, 'content-type': 'application/x-www-form-urlencoded' }, body });
    assert.deepEqual(((await (await formPut('groups[]=beta&groups[]=kitchen')).json()) as { groups: string[] }).groups, ['beta', 'kitchen']);
    assert.deepEqual(((await (await formPut('groups=kitchen&groups=beta')).json()) as { groups: string[] }).groups, ['beta', 'kitchen']);
    assert.deepEqual(((await (await formPut('groups=beta')).json()) as { groups: string[] }).groups, ['beta']);
    // A field named as Object's own is a field like any other.
    assert.equal((await formPut('constructor=x&__proto__=y')).status, 400);
    const filtered = (await particle.listDevices({ product: 'prod-a', groups: ['kitchen'], auth: f.tokens.carol })).body as unknown as { devices: { id: string }[] };
    assert.deepEqual(filtered.devices.map((d) => d.id), [A1]);
    assert.equal((await api('PUT', '/v1/products/prod-a/groups/kitchen', f.tokens.erin, { name: 'galley' })).body.group.name, 'galley');
    assert.equal((await api('DELETE', '/v1/products/prod-a/groups/galley', f.tokens.erin)).status, 204);
    assert.equal((await api('GET', '/v1/products/prod-a/groups/galley', f.tokens.erin)).status, 404);
  });

  it("decides putting devices into groups as editing groups and flashing (a group's release decides their firmware), and as creating a group it names anew: a scoped API user cannot flash or make groups this way", async () => {
    assert.equal((await api('POST', '/v1/products/prod-a/groups', f.tokens.erin, { name: 'canary' })).status, 201);
    const apiUser = async (scopes: string[]) =>
      (await api('POST', '/v1/products/prod-a/team', f.tokens.alice, { friendly_name: 'grouper', scopes })).body.created.tokens[0].token as string;
    const editor = await apiUser(['device.view', 'device.edit']);
    const refused = await api('PUT', '/v1/products/prod-a/devices/' + A2, editor, { groups: ['canary'] });
    assert.equal(refused.status, 403, 'device.edit alone moved a device onto a release before');
    assert.equal((await api('PUT', '/v1/products/prod-a/devices', editor, { action: 'groups', devices: [A2], metadata: { add: ['canary'] } })).status, 403);
    const grouper = await apiUser(['device.view', 'device.edit', 'group.edit']);
    assert.equal((await api('PUT', '/v1/products/prod-a/devices', grouper, { action: 'groups', devices: [A2], metadata: { add: ['canary'] } })).status, 403, 'group.edit without device.flash');
    const flasher = await apiUser(['device.view', 'device.edit', 'group.edit', 'device.flash']);
    assert.deepEqual((await api('PUT', '/v1/products/prod-a/devices/' + A2, flasher, { groups: ['canary'] })).body.groups, ['canary']);
    assert.equal((await api('PUT', '/v1/products/prod-a/devices/' + A2, flasher, { groups: ['made-here'] })).status, 403, 'a new group needs group.create');
    assert.equal((await api('PUT', '/v1/products/prod-a/devices', flasher, { action: 'groups', devices: [A2], metadata: { add: ['made-here'] } })).status, 403);
    assert.equal((await api('GET', '/v1/products/prod-a/groups/made-here', f.tokens.erin)).status, 404, 'nothing made');
    const batch = await api('PUT', '/v1/products/prod-a/devices', flasher, { action: 'groups', devices: [A2], metadata: { remove: ['canary'] } });
    assert.deepEqual(batch.body.devices, [A2]);
    // Humans: every role with group.edit has device.flash and group.create (Developer and up).
    assert.equal((await api('PUT', '/v1/products/prod-a/devices/' + A2, f.tokens.erin, { groups: ['made-by-erin'] })).status, 200);
    // Deleting a group with a release moves its devices too: device.flash as well (group.edit alone deleted it before).
    await f.bridge.store.addFirmware(f.products.A, { version: 41, title: 'v41', description: null, size: 1, sha256: '0'.repeat(64), path: 'none', uploadedBy: null });
    await f.bridge.store.releaseFirmware(f.products.A, { version: 41, productDefault: false, groups: ['canary'] });
    // Particle's targeted_firmware_release_version: what its releases target the device with (its groups', else the default).
    assert.equal((await api('PUT', '/v1/products/prod-a/devices/' + A2, f.tokens.erin, { groups: ['canary'] })).body.targeted_firmware_release_version, 41);
    const listed = (await api('GET', '/v1/products/prod-a/devices', f.tokens.carol)).body.devices as { id: string; targeted_firmware_release_version: number | null }[];
    assert.deepEqual(listed.map((d) => [d.id, d.targeted_firmware_release_version]).sort(), [[A1, null], [A2, 41]]);
    const deleter = await apiUser(['device.view', 'group.edit']);
    assert.equal((await api('DELETE', '/v1/products/prod-a/groups/canary', deleter)).status, 403);
    assert.equal((await api('GET', '/v1/products/prod-a/groups/canary', f.tokens.erin)).status, 200, 'still there');
    assert.equal((await api('DELETE', '/v1/products/prod-a/groups/made-by-erin', deleter)).status, 204, 'a group without a release: group.edit is enough');
    assert.equal((await api('DELETE', '/v1/products/prod-a/groups/canary', flasher)).status, 204);
    assert.equal((await api('GET', '/v1/products/prod-a/devices/' + A2, f.tokens.carol)).body.targeted_firmware_release_version, null, 'no release targets it now');
  });

  it('publishes events: subscribed devices get them, streams see them as coreid "api", names are checked', async () => {
    const seen: { name: string; data: string; coreid: string }[] = [];
    const stream = (await particle.getEventStream({ product: 'prod-a', auth: f.tokens.carol })) as unknown as { on(e: string, f: (x: { name: string; data: string; coreid: string }) => void): void; abort(): void };
    stream.on('event', (e) => seen.push(e));
    await new Promise((r) => setTimeout(r, 100));
    await particle.publishEvent({ name: 'alert/door', data: 'open', product: 'prod-a', auth: f.tokens.erin } as never);
    // The demo app subscribes to "alert" and answers with a "seen" event.
    for (let i = 0; i < 100 && !seen.some((e) => e.name === 'seen'); i++) await new Promise((r) => setTimeout(r, 30));
    stream.abort();
    assert.ok(seen.some((e) => e.name === 'alert/door' && e.data === 'open' && e.coreid === 'api'), 'the stream saw the published event');
    assert.ok(seen.some((e) => e.name === 'seen' && e.data === 'alert/door=open' && e.coreid === A1), 'the device got it and answered');
    await refused(particle.publishEvent({ name: 'alert/x', data: '1', product: 'prod-a', auth: f.tokens.carol } as never), 403);
    await refused(particle.publishEvent({ name: 'spark/fake', data: '1', product: 'prod-a', auth: f.tokens.erin } as never), 400);
    await refused(particle.publishEvent({ name: 'x', data: 'y'.repeat(2000), product: 'prod-a', auth: f.tokens.erin } as never), 400);
    assert.deepEqual((await api('POST', '/v1/devices/events', f.tokens.erin, { name: 'alert/all', data: '1' })).body, { ok: true });
    // particle-cli sends private=true; any other value than a true or false is refused, not read as one.
    assert.deepEqual((await api('POST', '/v1/devices/events', f.tokens.erin, { name: 'alert/all', private: 'true' })).body, { ok: true });
    assert.deepEqual((await api('POST', '/v1/devices/events', f.tokens.erin, { name: 'alert/all', private: 'yes please' })).body, { ok: false, error: 'private must be true or false', error_description: 'private must be true or false' });
    const nowhere = await api('POST', '/v1/devices/events', f.tokens.dave, { name: 'alert/all' });
    assert.equal(nowhere.status, 403, 'Support publishes nowhere');
    assert.match(nowhere.body.error, /^Permission denied: .* publish to a product with POST \/v1\/products\/:product\/events/);
  });

  it('imports devices with secrets, claims, unclaims and removes them', async () => {
    const ids = ['c0c0c0c0c0c0c0c0c0c0c0c0', 'c1c1c1c1c1c1c1c1c1c1c1c1'];
    const r = await api('POST', '/v1/products/prod-a/devices', f.tokens.erin, { ids: [...ids, A1, B1, 'nope'] });
    assert.deepEqual([r.body.updatedDeviceIds, r.body.existingDeviceIds, r.body.nonmemberDeviceIds, r.body.invalidDeviceIds], [ids, [A1], [B1], ['nope']]);
    assert.ok(await f.bridge.store.verifyDeviceSecret(ids[0], r.body.secrets[ids[0]]), 'the answered secret lets the device in');
    await particle.claimDevice({ deviceId: ids[0], auth: f.tokens.erin });
    assert.equal((await f.bridge.store.getDevice(ids[0]))!.ownerUserId, f.users.erin);
    // Particle's `owner` names who holds it, by username, in the device and in every listing.
    const owner = async (token: string) => [
      ((await particle.getDevice({ deviceId: ids[0], auth: token })).body as unknown as { owner: string | null }).owner,
      (await api('GET', '/v1/products/prod-a/devices?deviceId=' + ids[0], token)).body.devices[0].owner,
    ];
    assert.deepEqual(await owner(f.tokens.alice), ['erin', 'erin']);
    assert.equal(((await particle.listDevices({ auth: f.tokens.erin })).body as unknown as { id: string; owner: string | null }[]).find((d) => d.id === ids[0])?.owner, 'erin');
    await refused(particle.claimDevice({ deviceId: ids[0], auth: f.tokens.bob }), 404);
    // Another of the team may not take it over, nor release it with Particle's unclaim: that is the owner's, or the product route's.
    const taken = await api('POST', '/v1/devices', f.tokens.alice, { id: ids[0] });
    assert.equal(taken.status, 409, JSON.stringify(taken.body));
    assert.match(taken.body.error, /is claimed by another user; the product team releases it first \(DELETE \/v1\/products\/\d+\/devices\/c0c0c0c0c0c0c0c0c0c0c0c0\/owner\)/);
    assert.equal((await api('DELETE', '/v1/devices/' + ids[0], f.tokens.alice)).status, 403);
    assert.equal((await f.bridge.store.getDevice(ids[0]))!.ownerUserId, f.users.erin, 'still hers');
    await particle.claimDevice({ deviceId: ids[0], auth: f.tokens.erin });
    assert.equal((await f.bridge.store.getDevice(ids[0]))!.ownerUserId, f.users.erin, 'claiming her own again is fine');
    await particle.removeDevice({ deviceId: ids[0], auth: f.tokens.erin });
    assert.equal((await f.bridge.store.getDevice(ids[0]))!.ownerUserId, null, 'she released her own');
    // A customer's device is not a user's to claim or release.
    assert.deepEqual(await owner(f.tokens.alice), [null, null], 'no one holds it');
    const customer = (await f.bridge.store.listCustomers(f.products.A))[0];
    await f.bridge.store.claimDevice(ids[0], customer.id);
    assert.deepEqual(await owner(f.tokens.alice), [customer.username, customer.username]);
    assert.deepEqual((await api('GET', '/v1/products/prod-a/devices?deviceId=' + ids[0], f.tokens.alice)).body.customers, [{ id: customer.id, username: customer.username }]);
    assert.equal((await api('POST', '/v1/devices', f.tokens.erin, { id: ids[0] })).status, 409);
    assert.equal((await api('DELETE', '/v1/devices/' + ids[0], f.tokens.erin)).status, 403);
    await particle.removeDeviceOwner({ deviceId: ids[0], product: 'prod-a', auth: f.tokens.erin });
    assert.equal((await f.bridge.store.getDevice(ids[0]))!.customerId, null, 'the product route releases anyone\'s');
    await particle.claimDevice({ deviceId: ids[0], auth: f.tokens.erin });
    await particle.removeDeviceOwner({ deviceId: ids[0], product: 'prod-a', auth: f.tokens.erin });
    assert.equal((await f.bridge.store.getDevice(ids[0]))!.ownerUserId, null);
    await refused(particle.removeDevice({ deviceId: ids[1], product: 'prod-a', auth: f.tokens.dave }), 403);
    // Particle's deny: every removed device is shut out here (its secret goes with it); the flag is taken.
    await particle.removeDevice({ deviceId: ids[1], deny: true, product: 'prod-a', auth: f.tokens.erin });
    assert.equal(await f.bridge.store.getDevice(ids[1]), null);
    await refused(particle.getDevice({ deviceId: ids[1], auth: f.tokens.erin }), 404);
    // particle-api-js's import from a file: one device ID per line (blank lines and CRLF fine).
    const file = join(f.dir, 'import.txt');
    writeFileSync(file, 'c2c2c2c2c2c2c2c2c2c2c2c2\r\n\n' + A1 + '\nnot-an-id\n');
    const imported = (await particle.addDeviceToProduct({ product: 'prod-a', file, auth: f.tokens.erin } as never)).body as unknown as Record<string, unknown>;
    assert.deepEqual([imported.updatedDeviceIds, imported.existingDeviceIds, imported.invalidDeviceIds], [['c2c2c2c2c2c2c2c2c2c2c2c2'], [A1], ['not-an-id']]);
    writeFileSync(file, '\n\n');
    await refused(particle.addDeviceToProduct({ product: 'prod-a', file, auth: f.tokens.erin } as never), 400);
    // The product PUT: development, lock firmware.
    await particle.markAsDevelopmentDevice({ deviceId: ids[0], product: 'prod-a', auth: f.tokens.erin });
    // A lock names a version the product has.
    await refused(particle.lockDeviceProductFirmware({ deviceId: ids[0], desiredFirmwareVersion: 3, product: 'prod-a', auth: f.tokens.erin }), 404);
    const form = new FormData();
    form.set('version', '3');
    form.set('file', new Blob(['var app = 3;']), 'app.js');
    const up = await fetch(base + '/v1/products/prod-a/firmware', { method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.erin }, body: form });
    assert.equal(up.status, 201, await up.clone().text());
    await particle.lockDeviceProductFirmware({ deviceId: ids[0], desiredFirmwareVersion: 3, product: 'prod-a', auth: f.tokens.erin });
    const d = (await particle.getDevice({ deviceId: ids[0], product: 'prod-a', auth: f.tokens.erin })).body as unknown as { development: boolean; desired_firmware_version: number };
    assert.deepEqual([d.development, d.desired_firmware_version], [true, 3]);
    await refused(particle.lockDeviceProductFirmware({ deviceId: ids[0], desiredFirmwareVersion: 4, product: 'prod-a', auth: f.tokens.dave }), 403);
    // particle-api-js's updateDevice sends every field in one PUT: all are applied (before, the lock was, and the rest dropped with a 200).
    await particle.updateDevice({ deviceId: ids[0], name: 'after', notes: 'noted', development: false, desiredFirmwareVersion: null, product: 'prod-a', auth: f.tokens.erin } as never);
    const all = (await particle.getDevice({ deviceId: ids[0], product: 'prod-a', auth: f.tokens.erin })).body as unknown as { name: string; notes: string; development: boolean; desired_firmware_version: number | null };
    assert.deepEqual([all.name, all.notes, all.development, all.desired_firmware_version], ['after', 'noted', false, null]);
    // Every action such a PUT takes is decided: an API user that may flash but not edit changes nothing.
    const flasher = (await api('POST', '/v1/products/prod-a/team', f.tokens.alice, { friendly_name: 'flasher', scopes: ['device.flash', 'device.view'] })).body.created;
    const both = await api('PUT', '/v1/products/prod-a/devices/' + ids[0], flasher.tokens[0].token, { name: 'by-flasher', desired_firmware_version: 3 });
    assert.equal(both.status, 403);
    assert.equal((await api('PUT', '/v1/products/prod-a/devices/' + ids[0], flasher.tokens[0].token, { desired_firmware_version: 3 })).status, 200, 'the lock alone it may set');
    const kept = (await api('GET', '/v1/products/prod-a/devices/' + ids[0], f.tokens.erin)).body as { name: string };
    assert.equal(kept.name, 'after', 'the refused PUT renamed nothing');
    // A signal, or a one-off flash, goes in a PUT of its own: with other fields it is refused, naming it, and nothing is done.
    const signal = await api('PUT', '/v1/products/prod-a/devices/' + ids[0], f.tokens.erin, { signal: '1', name: 'signalled' });
    assert.deepEqual([signal.status, signal.body.error], [400, 'signal goes in a PUT of its own: send signal and the other fields separately']);
    const oneOff = await api('PUT', '/v1/products/prod-a/devices/' + ids[0], f.tokens.erin, { firmware_version: 3, notes: 'x' });
    assert.equal(oneOff.status, 400);
    assert.equal(((await api('GET', '/v1/products/prod-a/devices/' + ids[0], f.tokens.erin)).body as { name: string }).name, 'after');
  });

  it('serves device vitals: refresh, last, history, metadata; and the fleet health view', async () => {
    assert.equal((await api('POST', '/v1/diagnostics/' + A1 + '/update', f.tokens.carol)).status, 403, 'refresh needs Support');
    assert.equal((await api('POST', '/v1/products/prod-a/diagnostics/' + A1 + '/update', f.tokens.dave)).status, 202);
    let last: { status: number; body: any } = { status: 0, body: null };
    for (let i = 0; i < 100; i++) {
      last = await api('GET', '/v1/diagnostics/' + A1 + '/last', f.tokens.carol);
      if (last.status === 200) break;
      await new Promise((r) => setTimeout(r, 30));
    }
    assert.equal(last.status, 200);
    assert.equal(last.body.diagnostics.deviceID, A1);
    assert.equal(typeof last.body.diagnostics.payload.device.system.uptime, 'number');
    // A second refresh, past the agent's one report a second: its report follows the first refresh's answer, whose round trip the cloud timed.
    await new Promise((r) => setTimeout(r, 1100));
    const asked = Date.now();
    assert.equal((await api('POST', '/v1/products/prod-a/diagnostics/' + A1 + '/update', f.tokens.dave)).status, 202);
    for (let i = 0; i < 100 && Date.parse(last.body.diagnostics.updated_at) < asked; i++) {
      await new Promise((r) => setTimeout(r, 30));
      last = await api('GET', '/v1/diagnostics/' + A1 + '/last', f.tokens.carol);
    }
    // Particle's payload: an enumerated vital by its name, and the cloud's own view of the session under service.
    const shown = last.body.diagnostics.payload;
    assert.equal(shown.device.cloud.connection.status, 'connected');
    assert.ok(RESET_REASONS.names.includes(shown.device.system.reset_reason), shown.device.system.reset_reason);
    assert.ok(Number.isInteger(shown.service.cloud.uptime) && shown.service.cloud.uptime >= 0, JSON.stringify(shown.service));
    assert.ok(Number.isInteger(shown.service.cloud.publish.sent), JSON.stringify(shown.service));
    assert.ok(Number.isInteger(shown.service.coap.round_trip) && shown.service.coap.round_trip >= 0, JSON.stringify(shown.service));
    // History: Particle's {diagnostics: [...]}, oldest first; or CSV with Accept: text/csv, a column per vital.
    const history = await api('GET', '/v1/diagnostics/' + A1 + '?start_date=2020-01-01T00:00:00Z', f.tokens.carol);
    assert.ok(history.body.diagnostics.length >= 2);
    assert.deepEqual(Object.keys(history.body.diagnostics[0]), ['updated_at', 'deviceID', 'payload']);
    assert.equal(history.body.diagnostics.at(-1).updated_at, last.body.diagnostics.updated_at);
    const table = await fetch(base + '/v1/diagnostics/' + A1 + '?start_date=2020-01-01T00:00:00Z', { headers: { authorization: 'Bearer ' + f.tokens.carol, accept: 'text/csv' } });
    assert.equal(table.headers.get('content-type'), 'text/csv; charset=utf-8');
    const rows = (await table.text()).trimEnd().split('\r\n').map((r) => r.split(','));
    assert.equal(rows.length, history.body.diagnostics.length + 1);
    assert.deepEqual(rows[0].slice(0, 3), ['updated_at', 'deviceID', 'device.system.uptime']);
    assert.ok(rows.every((r) => r.length === rows[0].length));
    const lastRow = Object.fromEntries(rows[0].map((k, i) => [k, rows.at(-1)![i]]));
    assert.equal(lastRow.updated_at, last.body.diagnostics.updated_at);
    assert.equal(lastRow['device.cloud.connection.status'], 'connected');
    assert.equal(lastRow['service.coap.round_trip'], String(shown.service.coap.round_trip));
    assert.equal(lastRow['device.power.source'], '', 'a vital the sample lacks is an empty field');
    assert.deepEqual((await api('GET', '/v1/diagnostics/' + A1 + '?start_date=yesterday', f.tokens.carol)).body, { ok: false, error: 'start_date is not a date (ISO 8601) from 1970 to 9999', error_description: 'start_date is not a date (ISO 8601) from 1970 to 9999' });
    // Metadata: Particle's tree by the vitals' dotted names, saying how to read each.
    const meta = (await api('GET', '/v1/diagnostics/' + A1 + '/metadata', f.tokens.carol)).body.diagnostics_metadata;
    const charge = meta.device.power.battery.charge;
    assert.deepEqual([charge.title, charge.type, charge.priority, charge.units, charge.ranges], ['battery charge', 'number', 1, { title: 'percent', convert: { type: 'round' } }, { type: 'below', warning: 20 }]);
    assert.equal(typeof charge.messages.warning, 'string');
    assert.deepEqual(meta.device.system.memory.used.ranges, { type: 'ratio_above', ratio: 0.9, param1: 'device.system.memory.used', param2: 'device.system.memory.total' });
    assert.deepEqual(meta.device.system.memory.used.units, { title: 'kB', convert: { type: 'divide', by: 1024 } });
    assert.deepEqual(meta.device.power.battery.state.values.all, ['unknown', 'not_charging', 'charging', 'charged', 'discharging', 'fault', 'disconnected']);
    assert.equal(meta.device.power.battery.state.type, 'string');
    assert.equal(meta.service.coap.round_trip.units.title, 'ms');
    assert.equal((await api('GET', '/v1/diagnostics/' + B1 + '/last', f.tokens.carol)).status, 404);
    const health = (await api('GET', '/v1/products/prod-a/fleet_health', f.tokens.carol)).body;
    assert.ok(health.devices.online >= 1 && health.devices.total >= 2);
    assert.ok(health.firmware_versions.some((v: { version: number }) => v.version === 1));
    // The demo app's getter and timer threw: errors by kind and firmware version.
    for (let i = 0; i < 50 && !(await f.bridge.store.errorsByProduct(f.products.A)).length; i++) await new Promise((r) => setTimeout(r, 30));
    const h2 = (await api('GET', '/v1/products/prod-a/fleet_health', f.tokens.carol)).body;
    assert.ok(h2.errors.some((e: { kind: string; firmware_version: number }) => e.kind === 'timer' && e.firmware_version === 1), JSON.stringify(h2.errors));
    assert.equal((await api('GET', '/v1/products/prod-a/fleet_health', f.tokens.bob)).status, 404);
    // The device's reports one by one, with the stack and uptime fleet health sums away (before, no route showed them).
    const reports = (await api('GET', '/v1/products/prod-a/diagnostics/' + A1 + '/errors', f.tokens.carol)).body.errors as Record<string, unknown>[];
    const timer = reports.find((e) => e.kind === 'timer')!;
    assert.ok(timer, JSON.stringify(reports));
    assert.deepEqual(Object.keys(timer), ['at', 'kind', 'name', 'message', 'stack', 'count', 'uptime', 'firmware_version']);
    assert.ok(typeof timer.stack === 'string' && Number.isInteger(timer.uptime) && (timer.count as number) >= 1);
    assert.ok(reports.every((e, i) => i === 0 || Date.parse(String(e.at)) <= Date.parse(String(reports[i - 1].at))), 'newest first');
    assert.equal((await api('GET', '/v1/diagnostics/' + A1 + '/errors?limit=1', f.tokens.carol)).body.errors.length, 1);
    assert.equal((await api('GET', '/v1/diagnostics/' + A1 + '/errors?end_date=2020-01-01T00:00:00Z', f.tokens.carol)).body.errors.length, 0);
    assert.equal((await api('GET', '/v1/diagnostics/' + A1 + '/errors?limit=0', f.tokens.carol)).status, 400);
    assert.equal((await api('GET', '/v1/diagnostics/' + B1 + '/errors', f.tokens.carol)).status, 404);
  });

  it('adds SIM cards, moves them through their lifecycle, sets a data limit, removes them, by role', async () => {
    const luhn = (digits: string) => {
      let sum = 0;
      for (let i = 0; i < digits.length; i++) {
        let d = Number(digits[digits.length - 1 - i]);
        if (i % 2 === 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
        sum += d;
      }
      return digits + ((10 - (sum % 10)) % 10);
    };
    const [s1, s2] = [luhn('8901260882310000001'), luhn('8901260882310000002')];
    assert.equal((await api('POST', '/v1/products/prod-a/sims', f.tokens.dave, { sims: [s1] })).status, 403, 'adding needs a Developer');
    const added = (await api('POST', '/v1/products/prod-a/sims', f.tokens.erin, { sims: [s1, s2, '1234', s1.slice(0, -1) + ((Number(s1.slice(-1)) + 1) % 10)] })).body;
    assert.deepEqual([added.added, added.invalid.length], [[s1, s2], 2], 'a bad length and a bad check digit are refused');
    // A SIM is in one product: another product's is not added, and is not reported as already in this one (before: `existing`).
    const foreign = (await api('POST', '/v1/products/prod-b/sims', f.tokens.bob, { sims: [s1] })).body;
    assert.deepEqual([foreign.added, foreign.existing, foreign.invalid], [[], [], [s1]]);
    assert.deepEqual((await api('POST', '/v1/products/prod-a/sims', f.tokens.erin, { sims: [s1] })).body.existing, [s1], 'already in this product');
    // Imported active, as Particle's import activates them (before: inactive).
    assert.deepEqual((await api('GET', '/v1/products/prod-a/sims', f.tokens.carol)).body.sims.map((x: { iccid: string; status: string }) => [x.iccid, x.status]), [[s1, 'active'], [s2, 'active']]);
    const simPage = (await api('GET', '/v1/products/prod-a/sims?per_page=1&page=2', f.tokens.carol)).body;
    assert.deepEqual([simPage.sims.map((x: { iccid: string }) => x.iccid), simPage.meta], [[s2], { total_pages: 2 }]);
    // Particle's filters (particle-api-js listSIMs({iccid})): before, ignored, and every SIM was listed.
    const listed = async (query: string) => (await api('GET', '/v1/products/prod-a/sims?' + query, f.tokens.carol)).body.sims.map((x: { iccid: string }) => x.iccid);
    assert.deepEqual(await listed('iccid=' + s2), [s2]);
    assert.deepEqual(await listed('iccid=' + s1.slice(-6)), [s1], 'part of an ICCID');
    assert.deepEqual(await listed('deviceId=' + A1), [], 'a SIM is not linked to a device here: a device filter matches none');
    assert.deepEqual(((await particle.listSIMs({ product: 'prod-a', iccid: s1, auth: f.tokens.carol })).body as unknown as { sims: { iccid: string }[] }).sims.map((x) => x.iccid), [s1]);
    // ICCIDs as JSON numbers lose their last digits: refused, none added (before, a SIM never sent was registered).
    const asNumber = await api('POST', '/v1/products/prod-a/sims', f.tokens.erin, { sims: [89012608823110079191] });
    assert.deepEqual([asNumber.status, asNumber.body.error], [400, "sims must be a list of ICCIDs written as strings (a JSON number loses an ICCID's last digits)"]);
    assert.equal((await api('GET', '/v1/products/prod-a/sims', f.tokens.carol)).body.sims.length, 2);
    assert.equal((await api('PUT', '/v1/products/prod-a/sims/' + s1, f.tokens.carol, { action: 'deactivate' })).status, 403);
    assert.equal((await api('PUT', '/v1/products/prod-a/sims/' + s1, f.tokens.dave, { action: 'deactivate' })).body.status, 'inactive', 'Support changes the state');
    assert.equal((await api('PUT', '/v1/products/prod-a/sims/' + s1, f.tokens.dave, { action: 'deactivate' })).status, 409);
    assert.equal((await api('PUT', '/v1/products/prod-a/sims/' + s1, f.tokens.dave, { action: 'activate' })).body.status, 'active');
    assert.equal((await api('PUT', '/v1/products/prod-a/sims/' + s1, f.tokens.dave, { action: 'activate' })).status, 409);
    assert.equal((await api('PUT', '/v1/products/prod-a/sims/' + s1, f.tokens.dave, { action: 'reactivate' })).status, 409, 'as activate (before: 200)');
    const both = await api('PUT', '/v1/products/prod-a/sims/' + s1, f.tokens.dave, { action: 'deactivate', mb_limit: 7 });
    assert.deepEqual([both.status, both.body.error], [400, 'Send action or mb_limit, one of them'], 'before: 200, and the limit dropped');
    assert.equal((await api('PUT', '/v1/products/prod-a/sims/' + s1, f.tokens.dave, { mb_limit: 50 })).body.mb_limit, 50);
    assert.equal((await api('PUT', '/v1/products/prod-a/sims/' + s1, f.tokens.dave, { mb_limit: -1 })).status, 400);
    for (const junk of [[5], true, ' 5x', '0x10']) assert.equal((await api('PUT', '/v1/products/prod-a/sims/' + s1, f.tokens.dave, { mb_limit: junk })).status, 400, JSON.stringify(junk));
    assert.equal((await api('GET', '/v1/products/prod-a/sims/' + s1 + '/data_usage', f.tokens.dave)).status, 200);
    assert.equal((await f.bridge.store.getSim(s1))!.dataLimit, 50, 'the refused limits changed nothing');
    assert.equal((await api('PUT', '/v1/products/prod-a/sims/' + s1, f.tokens.dave, { action: 'explode' })).status, 400);
    assert.equal((await api('GET', '/v1/products/prod-a/sims/' + s1 + '/data_usage', f.tokens.carol)).body.metered, false);
    assert.equal((await api('GET', '/v1/products/prod-b/sims/' + s1, f.tokens.bob)).status, 404, 'another product\'s SIM');
    assert.equal((await api('DELETE', '/v1/products/prod-a/sims/' + s2, f.tokens.dave)).status, 403);
    assert.equal((await api('DELETE', '/v1/products/prod-a/sims/' + s2, f.tokens.erin)).status, 204);
    assert.equal((await api('GET', '/v1/products/prod-a/sims/' + s2, f.tokens.erin)).status, 404);

    // The fleet's data (particle-api-js getFleetDataUsage): the product's SIMs summed per day.
    const s3 = luhn('8901260882310000003');
    await api('POST', '/v1/products/prod-a/sims', f.tokens.erin, { sims: [s3] });
    for (const [iccid, date, bytes] of [[s1, '2026-01-01', 1_000_000], [s3, '2026-01-01', 500_000], [s3, '2026-01-02', 2_000_000]] as const)
      assert.equal((await api('PUT', '/v1/products/prod-a/sims/' + iccid + '/data_usage', f.tokens.erin, { date, bytes })).status, 200);
    const fleet = (await particle.getFleetDataUsage({ product: 'prod-a', auth: f.tokens.carol })).body as unknown as {
      total_active_sim_cards: number; total_mbs_used: number; usage_by_day: { date: string; mbs_used: number; mbs_used_cumulative: number }[];
    };
    // Without a range: the last 30 days, so none of these. Active: s1 and s3 (imported active).
    assert.deepEqual([fleet.total_active_sim_cards, fleet.total_mbs_used, fleet.usage_by_day], [2, 0, []]);
    const january = (await api('GET', '/v1/products/prod-a/sims/data_usage?start_date=2026-01-01&end_date=2026-01-31', f.tokens.carol)).body;
    assert.deepEqual(january.usage_by_day.map((d: { date: string; mbs_used: number; mbs_used_cumulative: number }) => [d.date, d.mbs_used, d.mbs_used_cumulative]), [['2026-01-01', 1.5, 1.5], ['2026-01-02', 2, 3.5]]);
    assert.equal(january.total_mbs_used, 3.5);
    // A SIM removed keeps its figures with the product, as its usage view does (before, they left the fleet's data).
    const s4 = luhn('8901260882310000004');
    await api('POST', '/v1/products/prod-a/sims', f.tokens.erin, { sims: [s4] });
    assert.equal((await api('PUT', '/v1/products/prod-a/sims/' + s4 + '/data_usage', f.tokens.erin, { date: '2026-01-02', bytes: 1_000_000 })).status, 200);
    assert.equal((await api('DELETE', '/v1/products/prod-a/sims/' + s4, f.tokens.erin)).status, 204);
    const range = '?start_date=2026-01-01&end_date=2026-01-31';
    assert.equal((await api('GET', '/v1/products/prod-a/sims/data_usage' + range, f.tokens.carol)).body.total_mbs_used, 4.5);
    assert.equal((await api('GET', '/v1/products/prod-a/usage' + range, f.tokens.alice)).body.totals.sim_data_mb, 4.5);
    assert.equal((await api('GET', '/v1/products/prod-b/sims/data_usage', f.tokens.carol)).status, 404, 'not on that product\'s team');

    // One SIM by its ICCID alone (checkSIM is a HEAD; removeSIM without a product): decided on its product.
    assert.equal((await particle.checkSIM({ iccid: s1, auth: f.tokens.carol })).statusCode, 204);
    assert.equal((await api('GET', '/v1/sims/' + s1, f.tokens.carol)).body.product_id, Number(f.products.A));
    await refused(particle.checkSIM({ iccid: s1, auth: f.tokens.bob }), 404);
    await refused(particle.checkSIM({ iccid: luhn('8901260882310000009'), auth: f.tokens.carol }), 404);
    // Someone off the team hears the same of a registered ICCID as of an unknown one.
    assert.deepEqual((await api('GET', '/v1/sims/' + s1, f.tokens.bob)).body, (await api('GET', '/v1/sims/' + luhn('8901260882310000009'), f.tokens.bob)).body);
    assert.deepEqual((await api('GET', '/v1/sims/' + s1, f.tokens.bob)).body, { ok: false, error: 'SIM not found', error_description: 'SIM not found' });
    // The lifecycle, the limit and the usage without a product (Particle's /v1/sims/:iccid; particle-api-js getSIMDataUsage without `product`), by the same roles.
    assert.equal((await api('PUT', '/v1/sims/' + s1, f.tokens.carol, { action: 'deactivate' })).status, 403);
    assert.deepEqual((await api('PUT', '/v1/sims/' + s1, f.tokens.bob, { action: 'deactivate' })).body, { ok: false, error: 'SIM not found', error_description: 'SIM not found' });
    assert.equal((await api('PUT', '/v1/sims/' + s1, f.tokens.dave, { action: 'deactivate' })).body.status, 'inactive');
    assert.equal((await api('PUT', '/v1/sims/' + s1, f.tokens.dave, { action: 'reactivate' })).body.status, 'active');
    assert.equal((await api('PUT', '/v1/sims/' + s1, f.tokens.dave, { mb_limit: 60 })).body.mb_limit, 60);
    assert.equal((await api('PUT', '/v1/sims/' + s1, f.tokens.dave, { action: 'explode' })).status, 400);
    const usage = (await particle.getSIMDataUsage({ iccid: s1, auth: f.tokens.carol })).body as unknown as { iccid: string; usage_by_day: unknown[] };
    assert.deepEqual([usage.iccid, Array.isArray(usage.usage_by_day)], [s1, true]);
    await refused(particle.getSIMDataUsage({ iccid: s1, auth: f.tokens.bob }), 404);
    assert.equal((await api('DELETE', '/v1/sims/' + s3, f.tokens.dave)).status, 403, 'removing needs a Developer');
    await particle.removeSIM({ iccid: s3, auth: f.tokens.erin });
    assert.equal((await api('GET', '/v1/sims/' + s3, f.tokens.erin)).status, 404);
  });

  it('counts usage per product per day: active devices, messages, bytes; Administrators see it', async () => {
    await f.bridge.broker.flush();
    const u = await api('GET', '/v1/products/prod-a/usage', f.tokens.alice);
    assert.equal(u.status, 200, JSON.stringify(u.body));
    const today = new Date().toISOString().slice(0, 10);
    const day = u.body.usage.find((d: { date: string }) => d.date === today);
    assert.ok(day && day.devices >= 1 && day.messages >= 3 && day.bytes > 0, JSON.stringify(u.body));
    assert.equal((await api('GET', '/v1/products/prod-a/usage', f.tokens.erin)).status, 403, 'billing needs an Administrator');
    assert.equal((await api('GET', '/v1/products/prod-a/usage?start_date=soon', f.tokens.alice)).status, 400);
    assert.deepEqual((await api('GET', '/v1/products/prod-a/usage?start_date=2001-01-01&end_date=2001-01-31', f.tokens.alice)).body.usage, []);
  });

  it('lists a user\'s live tokens by handle, never the token; revokes one by handle, then all, cutting their MQTT sessions', async () => {
    // A user of its own: revoking all would otherwise end a fixture token.
    await f.bridge.store.createUser('frank', 'frank-password');
    const t1 = await login('frank', 'frank-password');
    const t2 = await login('frank', 'frank-password');
    const handle = (t: string) => createHash('sha256').update(t).digest('hex').slice(0, 20);
    const list = (await api('GET', '/v1/access_tokens', t1)).body as { token: string; client: string; expires_at: string | null }[];
    assert.ok(list.length >= 2, JSON.stringify(list));
    assert.ok(list.every((x) => /^[0-9a-f]{20}$/.test(x.token)), 'handles only');
    assert.ok(list.some((x) => x.token === handle(t1) && x.client === 'particle-api' && x.expires_at !== null));
    assert.ok(!JSON.stringify(list).includes(t1) && !JSON.stringify(list).includes(t2), 'no token in the listing');
    assert.ok(!(await api('GET', '/v1/access_tokens', f.tokens.bob)).body.some((x: { token: string }) => x.token === handle(t1)), 'bob sees only his own');

    // Another user's handle, an unknown one, and a malformed one: 404, nothing revoked.
    assert.equal((await api('DELETE', '/v1/access_tokens/' + handle(t2), f.tokens.bob)).status, 404);
    assert.equal((await api('DELETE', '/v1/access_tokens/' + '0'.repeat(20), t1)).status, 404);
    assert.equal((await api('GET', '/v1/user', t2)).status, 200);
    assert.equal((await api('DELETE', '/v1/access_tokens/' + handle(t2), t1)).status, 200);
    assert.equal((await api('GET', '/v1/user', t2)).status, 401);
    assert.equal((await api('DELETE', '/v1/access_tokens/' + handle(t2), t1)).status, 404, 'already revoked');
    assert.ok(!(await api('GET', '/v1/access_tokens', t1)).body.some((x: { token: string }) => x.token === handle(t2)));

    // All of them, through particle-api-js: the MQTT session opened with t1 ends at once.
    const session = await app(f.port, 'frank-app', t1);
    const ended = closed(session);
    await particle.deleteActiveAccessTokens({ auth: t1 });
    await ended;
    session.end(true);
    assert.equal((await api('GET', '/v1/user', t1)).status, 401);
    assert.equal((await api('GET', '/v1/access_tokens', null)).status, 401);
  });

  it('shows and revokes the current token, refuses sign-up when off, describes itself in OpenAPI', async () => {
    const t = await login('carol', 'carol-password');
    const current = await api('GET', '/v1/access_tokens/current', t);
    assert.equal(current.body.client, 'particle-api');
    await particle.deleteCurrentAccessToken({ auth: t });
    assert.equal((await api('GET', '/v1/user', t)).status, 401);
    // particle-api-js deleteAccessToken sends the token and nothing else: holding it is the right to end it.
    const held = await login('carol', 'carol-password');
    await particle.deleteAccessToken({ token: held });
    assert.equal((await api('GET', '/v1/user', held)).status, 401);
    await refused(particle.deleteAccessToken({ token: held }), 404);
    await refused(particle.deleteAccessToken({ token: 'no-such-token' }), 404);
    // A handle needs its owner's live token.
    const other = await login('carol', 'carol-password');
    const handleOf = createHash('sha256').update(other).digest('hex').slice(0, 20);
    assert.equal((await api('DELETE', '/v1/access_tokens/' + handleOf, null)).status, 401);
    assert.equal((await api('GET', '/v1/user', other)).status, 200);
    // Particle's analytics identity.
    const me = (await particle.trackingIdentity({ auth: other })).body as unknown as { id: string; email?: string };
    assert.deepEqual(me, { id: f.users.carol });
    assert.deepEqual((await particle.trackingIdentity({ full: true, auth: other })).body, { id: f.users.carol, email: 'carol' });
    await refused(particle.createUser({ username: 'new@example.com', password: 'pw' }), 403);
    const doc = (await api('GET', '/v1/openapi.json', null)).body;
    assert.equal(doc.openapi, '3.1.0');
    // Every route is described, this one too.
    const described = Object.values(doc.paths as Record<string, Record<string, unknown>>).reduce((n, ops) => n + Object.keys(ops).length, 0);
    assert.equal(described, routes.length);
    assert.equal(doc.paths['/v1/openapi.json'].get['x-flotilla-guard'].kind, 'public');
    const op = doc.paths['/v1/products/{product}/team']['post'];
    assert.equal(op['x-flotilla-guard'].kind, 'product');
    assert.equal(doc.paths['/v1/devices/{id}/{name}'].get['x-flotilla-guard'].min_role, 'support');
    // The routes that take a password in Basic auth say so.
    const byPassword = Object.entries(doc.paths as Record<string, Record<string, { security: Record<string, unknown>[] }>>)
      .flatMap(([path, ops]) => Object.entries(ops).filter(([, op]) => op.security.some((s) => 'password' in s)).map(([m]) => m.toUpperCase() + ' ' + path));
    assert.deepEqual(byPassword.sort(), ['DELETE /v1/access_tokens', 'GET /v1/access_tokens']);
    assert.equal(doc.components.securitySchemes.password.scheme, 'basic');
    // The routes that take a file say so; the others take none.
    const takingFiles = Object.entries(doc.paths as Record<string, Record<string, { requestBody?: { content: Record<string, unknown> } }>>)
      .flatMap(([path, ops]) => Object.entries(ops).filter(([, op]) => op.requestBody?.content['multipart/form-data']).map(([m]) => m.toUpperCase() + ' ' + path));
    assert.deepEqual(takingFiles.sort(), ['POST /v1/products/{product}/devices', 'POST /v1/products/{product}/firmware', 'PUT /v1/devices/{id}', 'PUT /v1/orgs/{org}/devices/{id}', 'PUT /v1/products/{product}/devices/{id}'].sort());
  });
  it('answers a file sent to a route that takes none with 415, and leaves nothing on disk', async () => {
    const incoming = incomingDir(f.dir);
    const before = existsSync(incoming) ? readdirSync(incoming) : [];
    const form = new FormData();
    form.set('name', 'lab');
    form.set('file', new Blob(['x'.repeat(100000)]), 'big.bin');
    const group = await fetch(base + '/v1/products/prod-a/groups', { method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.erin }, body: form });
    assert.deepEqual([group.status, ((await group.json()) as { error: string }).error], [415, 'This request takes application/json or application/x-www-form-urlencoded, not a file']);
    assert.deepEqual(existsSync(incoming) ? readdirSync(incoming) : [], before);
    assert.equal((await api('GET', '/v1/products/prod-a/groups/lab', f.tokens.erin)).status, 404, 'nothing was made');
  });
  it('stops an import file at 64 KB while it arrives: 413, nothing imported, nothing left on disk', async () => {
    const incoming = incomingDir(f.dir);
    const before = existsSync(incoming) ? readdirSync(incoming) : [];
    // 2,800 well-formed device IDs, 70,000 bytes.
    const ids = Array.from({ length: 2800 }, (_, i) => 'd4d4d4d4d4d4d4d4' + i.toString(16).padStart(8, '0'));
    const form = new FormData();
    form.set('file', new Blob([ids.join('\n') + '\n']), 'ids.txt');
    const r = await fetch(base + '/v1/products/prod-a/devices', { method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.erin }, body: form });
    assert.deepEqual([r.status, ((await r.json()) as { error: string }).error], [413, 'The file is larger than 65536 bytes']);
    assert.deepEqual(existsSync(incoming) ? readdirSync(incoming) : [], before);
    assert.equal(await f.bridge.store.getDevice(ids[0]), null, 'nothing was imported');
  });
  it("keeps a multipart body's text fields to the body limit together (100 fields of 1 MB each were taken, all in memory)", async () => {
    const form = new FormData();
    for (let i = 0; i < 3; i++) form.set('f' + i, 'x'.repeat(400_000));
    const r = await fetch(base + '/v1/products/prod-a/devices', { method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.erin }, body: form });
    assert.deepEqual([r.status, ((await r.json()) as { error: string }).error], [413, 'The text fields are larger than 1048576 bytes together']);
  });
  it('answers an upload with no credentials 401 before reading its body (it was parsed first, to look for client credentials)', async () => {
    // Headers and the start of a part that never ends: the answer cannot wait for the body. Every upload
    // route, a device PUT too (its guard's action depends on the body: for nobody known it is not read).
    for (const [method, path, auth] of [['POST', '/v1/products/prod-a/firmware', ''], ['PUT', '/v1/devices/' + A1, ''], ['PUT', '/v1/products/prod-a/devices/' + A1, 'Authorization: Bearer made-up\r\n']]) {
      const socket = connectTcp(f.bridge.ports.http!, '127.0.0.1');
      await new Promise((r) => socket.once('connect', r));
      let answer = '';
      socket.on('data', (b: Buffer) => (answer += b.toString()));
      socket.write(`${method} ${path} HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: multipart/form-data; boundary=X\r\nContent-Length: 100000000\r\n\r\n--X\r\nContent-Disposition: form-data; name="f0"\r\n\r\n` + 'a'.repeat(10000));
      for (let i = 0; i < 100 && !answer.includes('\r\n\r\n'); i++) await new Promise((r) => setTimeout(r, 20));
      socket.destroy();
      assert.match(answer, /^HTTP\/1\.1 401 /, method + ' ' + path);
    }
  });
  it('says 100 Continue to an upload only once it is to be read: a caller without credentials or rights, or a body declared too large, is answered before sending it', async () => {
    /** Sends the headers of an upload waiting on 100 Continue; what came back within a second, and whether the server then closed. */
    const ask = async (auth: string, length: number, line = 'POST /v1/products/prod-a/firmware') => {
      const socket = connectTcp(f.bridge.ports.http!, '127.0.0.1');
      await new Promise((r) => socket.once('connect', r));
      let answer = '';
      let closed = false;
      socket.on('data', (b: Buffer) => (answer += b.toString()));
      socket.on('close', () => (closed = true));
      socket.write(`${line} HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: multipart/form-data; boundary=X\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\n\r\n`);
      for (let i = 0; i < 50 && !closed && !answer.includes('\r\n\r\n'); i++) await new Promise((r) => setTimeout(r, 20));
      return { socket, answer: () => answer, closed: () => closed };
    };
    // Nobody known, a viewer, and a body declared past the upload limit: the final answer, no Continue, and the connection closed
    // (the client may send the body anyway, or not: nothing else could follow on it).
    const bearer = (t: string) => 'Authorization: Bearer ' + t + '\r\n';
    for (const [auth, length, status, line] of [
      ['', 1000, 401, undefined], [bearer(f.tokens.carol), 1000, 403, undefined], [bearer(f.tokens.erin), 100_000_000, 413, undefined],
      // particle flash: a device PUT, whose action depends on its body. An upload is a flash, decided unread.
      [bearer(f.tokens.carol), 100_000, 403, 'PUT /v1/products/prod-a/devices/' + A1],
      [bearer(f.tokens.bob), 100_000, 404, 'PUT /v1/devices/' + A1],
      [bearer(f.tokens.carol), 100_000, 404, 'PUT /v1/devices/000000000000000000000000'],
    ] as const) {
      const a = await ask(auth, length, line);
      for (let i = 0; i < 50 && !a.closed(); i++) await new Promise((r) => setTimeout(r, 20));
      a.socket.destroy();
      assert.match(a.answer(), new RegExp('^HTTP/1\\.1 ' + status + ' '), status + ': ' + a.answer());
      assert.doesNotMatch(a.answer(), /100 Continue/);
      assert.ok(a.closed(), status + ': closed');
    }
    // A developer's upload within the limit is told to go on, and then read (this one lacks its version: 400 once read).
    const body = '--X\r\nContent-Disposition: form-data; name="title"\r\n\r\nt\r\n--X--\r\n';
    const a = await ask('Authorization: Bearer ' + f.tokens.erin + '\r\n', body.length);
    assert.equal(a.answer(), 'HTTP/1.1 100 Continue\r\n\r\n');
    a.socket.write(body);
    for (let i = 0; i < 50 && !/\r\n\r\n\{.*\}$/s.test(a.answer()); i++) await new Promise((r) => setTimeout(r, 20));
    a.socket.destroy();
    assert.match(a.answer(), /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 400 .*"ok":false/s);
    /** A token of a new API user of product A allowed only `scope`. */
    const apiUserToken = async (username: string, scope: 'device.flash' | 'device.edit') => {
      const u = await f.bridge.store.createApiUser({ username, productId: f.products.A, scopes: [scope] });
      return (await f.bridge.store.issueToken({ subject: { kind: 'apiUser', id: u.id }, clientId: 'test', scopes: [], ttlSeconds: 600 })).token;
    };
    /** A multipart PUT of device A1 with one field (a string, or a file's bytes as a Blob). */
    const putForm = (token: string, name: string, value: string | Blob) => {
      const form = new FormData();
      if (typeof value === 'string') form.set(name, value);
      else form.set(name, value, 'app.bin');
      return fetch(base + '/v1/products/prod-a/devices/' + A1, { method: 'PUT', headers: { authorization: 'Bearer ' + token }, body: form });
    };
    // A multipart device PUT with no file is decided as what it is once read: an API user that may flash, not edit, renames nothing.
    const rename = await putForm(await apiUserToken('flasher', 'device.flash'), 'name', 'renamed-by-a-flasher');
    assert.equal(rename.status, 403, await rename.clone().text());
    assert.notEqual((await f.bridge.store.getDevice(A1))!.name, 'renamed-by-a-flasher');
    // And one who may not flash but may do what the body asks is let on (curl -F): an edit-only API user renames, and may not flash.
    const edit = await apiUserToken('editor', 'device.edit');
    const ok = await putForm(edit, 'notes', 'by a form');
    assert.equal(ok.status, 200, await ok.clone().text());
    assert.equal((await f.bridge.store.getDevice(A1))!.notes, 'by a form');
    assert.equal((await putForm(edit, 'file', new Blob(['not an image']))).status, 403);
  });
});
