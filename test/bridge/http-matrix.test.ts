/**
 * The role × route matrix. Every route of the HTTP API is called by each of
 * the five roles, a customer, an API user, anonymous, an expired and a
 * revoked token, on a resource of their own and on a foreign one; the status
 * and the audit entry it wrote are compared with what the permission table of
 * protocol (PRODUCT_ACTIONS / ORG_ACTIONS min roles) says, computed here from
 * the table, not by asking decide().
 *
 * Destructive routes act on throwaway resources: each device-guarded request
 * gets a fresh device, and each request a fresh token, so a DELETE that is
 * allowed removes nothing the next request needs.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { isAction, roleAllows, type Action, type Role } from '@flotilla/protocol';
import { routes, type Route } from '@flotilla/bridge';
import { startFixture, type Fixture } from '../helpers/bridge-fixture.js';
import { defaultRateLimits } from '../../bridge/src/http/ratelimit.js';

type ActorName = 'owner' | 'administrator' | 'developer' | 'support' | 'viewer' | 'customer' | 'apiUser' | 'anonymous' | 'expired' | 'revoked';
const ROLE_OF: Partial<Record<ActorName, Role>> = { owner: 'owner', administrator: 'administrator', developer: 'developer', support: 'support', viewer: 'viewer' };
const ACTORS: ActorName[] = ['owner', 'administrator', 'developer', 'support', 'viewer', 'customer', 'apiUser', 'anonymous', 'expired', 'revoked'];
/** The API user of the fixture: product A, these scopes. */
const API_USER_SCOPES: Action[] = ['device.events', 'device.variable'];
const CUSTOMER_ACTIONS: Action[] = ['device.view', 'device.variable', 'device.function', 'device.events'];

/** Routes that need no token, and why that is right. */
const PUBLIC = new Set(['GET /healthz', 'POST /oauth/token', 'GET /oauth/authorize', 'POST /oauth/authorize', 'POST /v1/users', 'GET /v1/events', 'GET /v1/openapi.json', 'DELETE /v1/access_tokens/:token']);

let seq = 0;
const freshId = () => (0xc0000000 + ++seq).toString(16).padStart(24, 'e');

interface Reply {
  status: number;
  body: string;
}

/** One request; a stream (text/event-stream) is cut as soon as its headers arrive. */
function call(port: number, method: string, path: string, token: string | null, body: unknown): Promise<Reply> {
  const text = body === undefined ? '' : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1', port, method, path,
        headers: { ...(token ? { authorization: 'Bearer ' + token } : {}), ...(text ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } : {}) },
      },
      (res) => {
        if (String(res.headers['content-type']).startsWith('text/event-stream')) {
          resolve({ status: res.statusCode ?? 0, body: '' });
          req.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', (e) => (e.message === 'socket hang up' ? undefined : reject(e)));
    req.end(text);
  });
}

describe('HTTP API: the role × route matrix', function () {
  this.timeout(120000);
  let f: Fixture;
  let port: number;
  const ids = { orgO: '', orgP: '', productC: '', productD: '', customer: '', apiUser: '', users: {} as Record<string, string> };

  before(async () => {
    // Every route is called 20 times from one address: lift the login lock-out (http-ratelimit.test.ts tests it).
    // Every refusal is checked for its audit entry here, the unauthenticated ones too: their budget per address is raised.
    f = await startFixture({ httpPort: 0, callTimeoutMs: 200, rateLimits: { ...defaultRateLimits, tokenFailures: { limit: 1000, lockMs: 1000 }, unauthenticatedAudits: { limit: 100000, windowMs: 60000 } } });
    port = f.bridge.ports.http as number;
    const s = f.bridge.store;
    ids.users = { ...f.users, frank: (await s.createUser('frank', 'frank-password')).id };
    await s.addProductMember(f.products.A, ids.users.frank, 'administrator');
    // Org O (alice its Owner) with the same roles as product A's team, and product C in it; org P is bob's, with product D.
    const O = await s.createOrg('Org O', ids.users.alice);
    for (const [u, r] of [['frank', 'administrator'], ['erin', 'developer'], ['dave', 'support'], ['carol', 'viewer']] as const) {
      // Joining the org removes their product-team memberships on the org's products (none: C is created after).
      await s.addOrgMember(O.id, ids.users[u], r);
    }
    ids.orgO = O.id;
    ids.productC = String((await s.createProduct({ name: 'C', slug: 'prod-c', orgId: O.id })).id);
    const P = await s.createOrg('Org P', ids.users.bob);
    ids.orgP = P.id;
    ids.productD = String((await s.createProduct({ name: 'D', slug: 'prod-d', orgId: P.id })).id);
    const customer = await s.findCustomer(f.products.A, 'cust1@example.com');
    ids.customer = customer!.id;
    const api = (await s.listApiUsers({ productId: f.products.A }))[0];
    ids.apiUser = api.id;
    // The fixture's expired token lives one second.
    while ((await s.findToken(f.tokens.expired))!.expiresAt!.getTime() > Date.now()) await new Promise((r) => setTimeout(r, 50));
  });
  after(() => f.close());

  /** A token for the actor, fresh for each request (some routes revoke the token they are called with). */
  async function tokenOf(a: ActorName): Promise<string | null> {
    const s = f.bridge.store;
    const issue = async (kind: 'user' | 'customer' | 'apiUser', id: string, ttlSeconds = 3600) =>
      (await s.issueToken({ subject: { kind, id }, clientId: 'matrix', scopes: [], ttlSeconds })).token;
    switch (a) {
      case 'anonymous':
        return null;
      case 'expired':
        return f.tokens.expired;
      case 'revoked':
        return f.tokens.revoked;
      case 'customer':
        return issue('customer', ids.customer);
      case 'apiUser':
        return issue('apiUser', ids.apiUser);
      default:
        return issue('user', ids.users[{ owner: 'alice', administrator: 'frank', developer: 'erin', support: 'dave', viewer: 'carol' }[a]]);
    }
  }

  /** What the permission table says: 'allow', or the refusal's status. */
  function expected(a: ActorName, action: Action, on: 'device' | 'product' | 'org', own: boolean, inOrg: boolean, customerOwns: boolean): 'allow' | 401 | 403 | 404 {
    if (a === 'anonymous' || a === 'expired' || a === 'revoked') return 401;
    if (!own) return 404;
    const role = ROLE_OF[a];
    if (role) return roleAllows(role, action) ? 'allow' : 403;
    if (a === 'customer') return on === 'device' && customerOwns ? (CUSTOMER_ACTIONS.includes(action) ? 'allow' : 403) : 404;
    // The API user is scoped to product A: not the org, not product C.
    if (on === 'org' || inOrg) return 404;
    return action !== 'billing.manage' && API_USER_SCOPES.includes(action) ? 'allow' : 403;
  }

  it('gives every route a guard: public ones are the expected few, every action is in the matrix', () => {
    assert.ok(routes.length > 60, 'the whole table is here');
    for (const r of routes) {
      const key = r.method + ' ' + r.path;
      const g = r.guard;
      assert.ok(g && ['public', 'signedIn', 'device', 'product', 'org', 'orgProducts'].includes(g.kind), key + ' has no guard');
      if (g.kind === 'public') assert.ok(PUBLIC.has(key), key + ' is public but not on the list of public routes');
      if (g.kind === 'public' || g.kind === 'signedIn') assert.ok(g.why.length > 10, key + ' says why it is ' + g.kind);
      else if (typeof g.action === 'string') assert.ok(isAction(g.action), key + ': ' + g.action + ' is not in the matrix');
      if (g.kind === 'device') assert.ok(r.path.includes(':id') || g.idFrom === 'body', key + ' names no device');
      if (g.kind === 'product') assert.ok(r.path.includes(':product'), key + ' names no product');
      if (g.kind === 'org' || g.kind === 'orgProducts') assert.ok(r.path.includes(':org'), key + ' names no org');
    }
    const keys = routes.map((r) => r.method + ' ' + r.path.replace(/:[A-Za-z]+/g, ':'));
    assert.deepEqual(keys.filter((k, i) => keys.indexOf(k) !== i), [], 'a route that an earlier one hides');
    for (const p of PUBLIC) assert.ok(routes.some((r) => r.method + ' ' + r.path === p), p + ' is listed as public but does not exist');
  });

  it('answers every route for every actor, own and foreign, as the permission table says, and audits it', async () => {
    const s = f.bridge.store;
    const failures: string[] = [];
    let checked = 0;
    /** A public route answers the same whoever asks. */
    const publicStatus = new Map<string, Set<number>>();
    const tally = { allow: 0, 401: 0, 403: 0, 404: 0 };
    for (const r of routes) {
      for (const own of [true, false]) {
        for (const a of ACTORS) {
          const inOrg = r.path.includes(':org');
          const product = own ? (inOrg ? ids.productC : f.products.A) : inOrg ? ids.productD : f.products.B;
          // A fresh device for every request; in product A it is the customer's, so the customer's row means something.
          const device = freshId();
          await s.createDevice({ id: device, productId: product });
          const customerOwns = own && !inOrg;
          if (customerOwns) await s.claimDevice(device, ids.customer);
          const path = r.path
            .replace(':product', product)
            .replace(':org', own ? ids.orgO : ids.orgP)
            .replace(':id', device)
            .replace(':name', 'temp')
            .replace(':group', 'no-such-group')
            .replace(':customer', 'nobody@example.com')
            .replace(':client', 'no-such-client')
            .replace(':username', 'nobody@example.com')
            .replace(':invitation', 'no-such-invitation')
            .replace(':token', 'no-such-token')
            .replace(':integration', 'no-such-integration')
            .replace(':iccid', '89012608823100000003')
            .replace('*prefix', 'p');
          const g = r.guard;
          const body = g.kind === 'device' && g.idFrom === 'body' ? { id: device } : r.method === 'GET' ? undefined : {};
          const before = (await s.auditLog({ limit: 1 }))[0]?.id ?? 0;
          const reply = await call(port, r.method, path, await tokenOf(a), body);
          const audit = (await s.auditLog({ limit: 1 }))[0];
          const audited = audit && audit.id > before ? audit : null;
          const label = `${r.method} ${r.path} as ${a} on ${own ? 'own' : 'foreign'}`;
          checked++;
          if (g.kind === 'public') {
            const seen = publicStatus.get(r.method + ' ' + r.path) ?? new Set<number>();
            seen.add(reply.status);
            publicStatus.set(r.method + ' ' + r.path, seen);
            if (audited) failures.push(`${label}: a public route ran a guard`);
            continue;
          }
          if (g.kind === 'signedIn') {
            const want401 = a === 'anonymous' || a === 'expired' || a === 'revoked';
            if (want401 !== (reply.status === 401)) failures.push(`${label}: ${reply.status} (${reply.body.slice(0, 80)})`);
            if (want401 && !(audited && !audited.allowed && audited.status === 401)) failures.push(`${label}: the refusal was not audited`);
            continue;
          }
          // A body-dependent action: what these routes decide with an empty body.
          // A body-dependent action: the one the route picks for the body sent.
          const action = typeof g.action === 'string' ? g.action : await g.action(async () => (body ?? {}) as Record<string, unknown>);
          // A product action on every product of the org is decided by the org role (cascaded, the same role): as on the org.
          const want = expected(a, action as Action, g.kind === 'orgProducts' ? 'org' : g.kind, own, inOrg, customerOwns);
          tally[want]++;
          if (!audited) {
            failures.push(`${label}: no audit entry`);
            continue;
          }
          if (want === 'allow') {
            if (!audited.allowed || audited.action !== action) failures.push(`${label}: audited ${JSON.stringify([audited.allowed, audited.status, audited.action])}, expected allowed ${action}`);
            if (reply.status === 401) failures.push(`${label}: 401 after the guard allowed`);
          } else {
            if (reply.status !== want) failures.push(`${label}: ${reply.status} (${reply.body.slice(0, 80)}), expected ${want}`);
            if (audited.allowed || audited.status !== want) failures.push(`${label}: audited ${JSON.stringify([audited.allowed, audited.status])}, expected ${want}`);
          }
        }
      }
    }
    for (const [key, statuses] of publicStatus) if (statuses.size !== 1) failures.push(`${key}: public, but answers ${[...statuses].join(', ')} depending on the token`);
    assert.deepEqual(failures.slice(0, 30), [], failures.length + ' cells disagree with the table');
    assert.ok(checked >= routes.length * ACTORS.length * 2);
    // Every kind of answer is exercised, many times.
    for (const [k, n] of Object.entries(tally)) assert.ok(n > 100, `only ${n} cells expect ${k}: ${JSON.stringify(tally)}`);
    console.log(`      ${routes.length} routes, ${checked} requests: ${JSON.stringify(tally)}`);
  });
});
