/**
 * A product's end users, end to end with real HTTP clients against a real
 * bridge: the three ways customers sign in (simple, two-legged, OAuth 2.0
 * authorization code with PKCE), each refused for a product that chose
 * another; claim codes presented by the real agent; claiming by id; and
 * unclaiming with live event streams and MQTT subscriptions open.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import Particle from 'particle-api-js';
import { CLAIM_CODE_EVENT, encode, topics } from '@flotilla/protocol';
import { emptyFlash, MemoryFlash, VmDevice } from '@flotilla/simulator';
import type { MqttClient } from 'mqtt';
import { A1, A2, app, B1, closed, device, SECRET, startFixture, type Fixture } from '../helpers/bridge-fixture.js';
import { image } from '../helpers/images.js';

const REDIRECT = 'https://kitchen.example/oauth/callback';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

describe('Customers: the three ways in, claim codes, unclaiming', function () {
  this.timeout(30000);
  let f: Fixture;
  let base: string;
  let particle: InstanceType<typeof Particle>;
  let client: { id: string; secret: string };
  let web: { id: string; secret: string };

  async function api(method: string, path: string, token: string | null, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    const res = await fetch(base + path, {
      method,
      headers: { ...(token ? { authorization: 'Bearer ' + token } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  /** POST /oauth/token, form-encoded. */
  async function token(form: Record<string, string>): Promise<{ status: number; body: any }> {
    const r = await fetch(base + '/oauth/token', { method: 'POST', body: new URLSearchParams(form) });
    return { status: r.status, body: await r.json() };
  }

  const basic = (c: { id: string; secret: string }) => ({ authorization: 'Basic ' + Buffer.from(c.id + ':' + c.secret).toString('base64') });
  const mode = async (m: string) => assert.equal((await api('PUT', '/v1/products/prod-a', f.tokens.alice, { settings: { customer_auth: m } })).status, 200);

  before(async () => {
    f = await startFixture({ httpPort: 0, callTimeoutMs: 2000, sseKeepaliveMs: 200 });
    base = 'http://127.0.0.1:' + f.bridge.ports.http;
    particle = new Particle({ baseUrl: base });
    client = (await api('POST', '/v1/products/prod-a/clients', f.tokens.alice, { name: 'Kitchen App', type: 'installed' })).body.client;
    web = (await api('POST', '/v1/products/prod-a/clients', f.tokens.alice, { name: 'Kitchen Web', type: 'web', redirect_uri: REDIRECT })).body.client;
  });
  after(() => f.close());

  it('refuses a customer_auth setting that is not one of the three', async () => {
    const r = await api('PUT', '/v1/products/prod-a', f.tokens.alice, { settings: { customer_auth: 'magic' } });
    assert.deepEqual([r.status, r.body.error], [400, 'settings.customer_auth must be one of simple, two_legged, oauth']);
  });

  it('simple authentication (the default): the app signs a customer up with its client credentials, the customer logs in with the password; the other two ways are refused', async () => {
    const made = await api('POST', '/v1/products/prod-a/customers', null, { email: 'sue@example.com', password: 'sue-password' }, basic(client));
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.ok(made.body.access_token);
    const login = await token({ grant_type: 'password', username: 'sue@example.com', password: 'sue-password', client_id: client.id, client_secret: client.secret });
    assert.equal(login.status, 200);
    assert.deepEqual((await api('GET', '/v1/devices', login.body.access_token)).body, []);
    // The team sees the customer.
    const listed = (await api('GET', '/v1/products/prod-a/customers', f.tokens.carol)).body.customers.map((c: { username: string }) => c.username);
    assert.ok(listed.includes('sue@example.com'));
    // Two-legged and OAuth steps are not this product's.
    const noPassword = await api('POST', '/v1/products/prod-a/customers', null, { email: 'ned@example.com', no_password: true }, basic(client));
    assert.deepEqual([noPassword.status, noPassword.body.error], [400, "This product signs its customers in with simple authentication (email and password); a customer without a password is not allowed"]);
    const scoped = await token({ grant_type: 'client_credentials', scope: 'customer=sue@example.com', client_id: web.id, client_secret: web.secret });
    assert.deepEqual([scoped.status, scoped.body.error], [400, 'unauthorized_client']);
    assert.match(scoped.body.error_description, /simple authentication/);
    const { challenge } = pkce();
    const page = await fetch(`${base}/oauth/authorize?response_type=code&client_id=${web.id}&redirect_uri=${encodeURIComponent(REDIRECT)}&state=s1&code_challenge=${challenge}&code_challenge_method=S256`, { redirect: 'manual' });
    assert.equal(page.status, 302);
    const back = new URL(page.headers.get('location')!);
    assert.deepEqual([back.origin + back.pathname, back.searchParams.get('error'), back.searchParams.get('state')], [REDIRECT, 'unauthorized_client', 's1']);
  });

  it("a product that leaves simple authentication: the app's customer tokens from before are no longer refreshed by it", async () => {
    const login = await token({ grant_type: 'password', username: 'sue@example.com', password: 'sue-password', client_id: client.id, client_secret: client.secret });
    assert.equal(login.status, 200);
    for (const m of ['oauth', 'two_legged']) {
      await mode(m);
      // Before: in OAuth mode the installed client went on refreshing them for good.
      const refreshed = await token({ grant_type: 'refresh_token', refresh_token: login.body.refresh_token, client_id: client.id, client_secret: client.secret });
      assert.deepEqual([m, refreshed.status, refreshed.body.error], [m, 400, 'unauthorized_client']);
    }
    await mode('simple');
    assert.equal((await token({ grant_type: 'refresh_token', refresh_token: login.body.refresh_token, client_id: client.id, client_secret: client.secret })).status, 200, 'back in simple mode');
  });

  it("the team ends a customer's sessions: deleting the client revokes what it issued (live sessions end), and a password reset revokes the customer's tokens", async () => {
    const leaked = (await api('POST', '/v1/products/prod-a/clients', f.tokens.alice, { name: 'Leaked App', type: 'installed' })).body.client as { id: string; secret: string };
    const signup = await api('POST', '/v1/products/prod-a/customers', null, { email: 'kim@example.com', password: 'kim-password' }, basic(leaked));
    assert.equal(signup.status, 201);
    const forever = await token({ grant_type: 'password', username: 'kim@example.com', password: 'kim-password', expires_in: '0', client_id: leaked.id, client_secret: leaked.secret });
    assert.deepEqual([forever.status, forever.body.expires_in], [200, 0], 'a token that never expires');
    const session = await app(f.port, 'kim-app', forever.body.access_token);
    assert.equal((await api('DELETE', '/v1/products/prod-a/clients/' + leaked.id, f.tokens.alice)).status, 204);
    await closed(session);
    assert.equal((await api('GET', '/v1/devices', forever.body.access_token)).status, 401, 'revoked with its client');
    assert.equal((await api('GET', '/v1/devices', signup.body.access_token)).status, 401, "the sign-up's token is that client's too");
    assert.equal((await token({ grant_type: 'refresh_token', refresh_token: forever.body.refresh_token, client_id: client.id, client_secret: client.secret })).body.error, 'invalid_grant');
    // A reset by the team: the tokens of the old password end; the new one logs in.
    const before = await token({ grant_type: 'password', username: 'kim@example.com', password: 'kim-password', client_id: client.id, client_secret: client.secret });
    assert.equal((await api('GET', '/v1/devices', before.body.access_token)).status, 200);
    assert.equal((await api('PUT', '/v1/products/prod-a/customers/kim@example.com', f.tokens.alice, { password: 'kim-new-password' })).status, 200);
    assert.equal((await api('GET', '/v1/devices', before.body.access_token)).status, 401, 'ended by the reset');
    assert.equal((await token({ grant_type: 'refresh_token', refresh_token: before.body.refresh_token, client_id: client.id, client_secret: client.secret })).body.error, 'invalid_grant');
    assert.equal((await token({ grant_type: 'password', username: 'kim@example.com', password: 'kim-new-password', client_id: client.id, client_secret: client.secret })).status, 200);
  });

  it("two-legged authentication: the product's server makes a customer without a password and gets customer tokens; passwords are refused", async () => {
    await mode('two_legged');
    // The product's server makes customers (before, the app's installed client did too: anyone holding a copy of the app
    // made customers, got renewable tokens and claimed the product's unclaimed devices).
    const byApp = await api('POST', '/v1/products/prod-a/customers', null, { email: 'mallory@example.com', no_password: true }, basic(client));
    assert.deepEqual([byApp.status, byApp.body.error], [403, "Customers without a password are made by the product's server: use a web client, not an installed app's"]);
    assert.equal(await f.bridge.store.findCustomer(f.products.A, 'mallory@example.com'), null);
    const made = await api('POST', '/v1/products/prod-a/customers', null, { email: 'ned@example.com', no_password: true }, basic(web));
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.equal(made.body.customer.no_password, true);
    // The product's server asks with a web client; the app's installed client (in every copy of the app) may not speak for customers.
    const fromApp = await token({ grant_type: 'client_credentials', scope: 'customer=ned@example.com', client_id: client.id, client_secret: client.secret });
    assert.deepEqual([fromApp.status, fromApp.body.error], [400, 'unauthorized_client']);
    assert.match(fromApp.body.error_description, /web client/);
    const t = await token({ grant_type: 'client_credentials', scope: 'customer=ned@example.com', client_id: web.id, client_secret: web.secret });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    assert.deepEqual((await api('GET', '/v1/devices', t.body.access_token)).body, []);
    // Refresh tokens rotate, and only by the client they were issued to (the app's installed client is refused before the token is read:
    // it refreshes no customer token of a two-legged product).
    assert.equal((await token({ grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: client.id, client_secret: client.secret })).body.error, 'unauthorized_client');
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: web.id, client_secret: web.secret });
    assert.equal(refreshed.status, 200);
    assert.equal((await token({ grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: web.id, client_secret: web.secret })).body.error, 'invalid_grant');
    // Not by Particle's public client (before, any client refreshed any token, so deleting a product's client ended none of its customers' sessions).
    assert.equal((await token({ grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token, client_id: 'particle', client_secret: 'particle' })).body.error, 'invalid_grant');
    // The token made with the customer by the team (the product's, not one client's): the product's server refreshes it; no other client,
    // and not the app's installed client, which two-legged products keep from customer tokens (before: 200).
    const byTeam = await api('POST', '/v1/products/prod-a/customers', f.tokens.alice, { email: 'otto@example.com', no_password: true });
    assert.equal(byTeam.status, 201, JSON.stringify(byTeam.body));
    assert.equal((await token({ grant_type: 'refresh_token', refresh_token: byTeam.body.refresh_token, client_id: 'particle', client_secret: 'particle' })).body.error, 'invalid_grant');
    const appRefresh = await token({ grant_type: 'refresh_token', refresh_token: byTeam.body.refresh_token, client_id: client.id, client_secret: client.secret });
    assert.deepEqual([appRefresh.status, appRefresh.body.error], [400, 'unauthorized_client']);
    assert.equal((await token({ grant_type: 'refresh_token', refresh_token: byTeam.body.refresh_token, client_id: web.id, client_secret: web.secret })).status, 200);
    // Simple authentication's steps are refused now, even for a customer made before the change.
    const withPassword = await api('POST', '/v1/products/prod-a/customers', null, { email: 'pat@example.com', password: 'pat-password' }, basic(client));
    assert.equal(withPassword.status, 400);
    const login = await token({ grant_type: 'password', username: 'sue@example.com', password: 'sue-password', client_id: client.id, client_secret: client.secret });
    assert.deepEqual([login.status, login.body.error], [400, 'unauthorized_client']);
    assert.match(login.body.error_description, /two-legged/);
    // An unknown customer and a missing scope.
    assert.equal((await token({ grant_type: 'client_credentials', scope: 'customer=nobody@example.com', client_id: web.id, client_secret: web.secret })).body.error, 'invalid_grant');
    assert.equal((await token({ grant_type: 'client_credentials', client_id: web.id, client_secret: web.secret })).body.error, 'invalid_scope');
  });

  describe('OAuth 2.0: authorization code with PKCE', () => {
    const authorizeUrl = (q: Record<string, string>) => base + '/oauth/authorize?' + new URLSearchParams(q).toString();
    const request = (challenge: string, over: Record<string, string> = {}) => ({
      response_type: 'code', client_id: web.id, redirect_uri: REDIRECT, state: 'xyz', code_challenge: challenge, code_challenge_method: 'S256', ...over,
    });
    /** The consent form's answer; the redirect's query. */
    async function consent(q: Record<string, string>, username: string, password: string, decision = 'allow'): Promise<{ status: number; query: URLSearchParams | null; html: string }> {
      const r = await fetch(base + '/oauth/authorize', { method: 'POST', body: new URLSearchParams({ ...q, username, password, decision }), redirect: 'manual' });
      const loc = r.headers.get('location');
      return { status: r.status, query: loc ? new URL(loc).searchParams : null, html: loc ? '' : await r.text() };
    }
    const exchange = (code: string, verifier: string, over: Record<string, string> = {}) =>
      token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: web.id, client_secret: web.secret, ...over });

    before(() => mode('oauth'));

    it('links a user to the product: consent page, code, exchange with the verifier, a customer token; the team sees the customer', async () => {
      const { verifier, challenge } = pkce();
      const page = await fetch(authorizeUrl(request(challenge)));
      assert.equal(page.status, 200);
      assert.equal(page.headers.get('x-frame-options'), 'DENY');
      const html = await page.text();
      assert.match(html, /Kitchen Web/);
      assert.match(html, /<form method="post" action="\/oauth\/authorize">/);
      const wrong = await consent(request(challenge), 'bob', 'not-his-password');
      assert.equal(wrong.status, 401);
      assert.match(wrong.html, /username or password is not right/);
      const ok = await consent(request(challenge), 'bob', 'bob-password');
      assert.equal(ok.status, 302);
      assert.equal(ok.query!.get('state'), 'xyz');
      const code = ok.query!.get('code')!;
      const t = await exchange(code, verifier);
      assert.equal(t.status, 200, JSON.stringify(t.body));
      assert.ok(t.body.refresh_token);
      assert.deepEqual((await api('GET', '/v1/devices', t.body.access_token)).body, [], 'a customer of the product, with no device yet');
      const listed = (await api('GET', '/v1/products/prod-a/customers', f.tokens.carol)).body.customers.map((c: { username: string }) => c.username);
      assert.ok(listed.includes('bob'), 'the linked user is a customer the team sees');
      // Linking again gives the same customer.
      const again = pkce();
      const second = await consent(request(again.challenge), 'bob', 'bob-password');
      const t2 = await exchange(second.query!.get('code')!, again.verifier);
      assert.equal(t2.status, 200);
      assert.equal((await api('GET', '/v1/products/prod-a/customers', f.tokens.carol)).body.customers.filter((c: { username: string }) => c.username === 'bob').length, 1);
      // The refresh token rotates: once only.
      const r1 = await token({ grant_type: 'refresh_token', refresh_token: t2.body.refresh_token, client_id: web.id, client_secret: web.secret });
      assert.equal(r1.status, 200);
      assert.equal((await token({ grant_type: 'refresh_token', refresh_token: t2.body.refresh_token, client_id: web.id, client_secret: web.secret })).body.error, 'invalid_grant');
    });

    it('answers a wrong redirect URI or an unknown client with an error page, never a redirect; other mistakes go back to the client', async () => {
      const { challenge } = pkce();
      for (const [what, q] of [
        ['unregistered redirect URI', request(challenge, { redirect_uri: 'https://evil.example/cb' })],
        ['unknown client', request(challenge, { client_id: 'nope' })],
      ] as const) {
        const r = await fetch(authorizeUrl(q), { redirect: 'manual' });
        assert.equal(r.status, 400, what);
        assert.equal(r.headers.get('location'), null, what);
        assert.match(await r.text(), /not valid/, what);
        const posted = await consent(q, 'bob', 'bob-password');
        assert.deepEqual([posted.status, posted.query], [400, null], what + ' (the form)');
      }
      const cases: [string, Record<string, string>, string][] = [
        ['no PKCE', request('', { code_challenge_method: '' }), 'invalid_request'],
        ['plain PKCE', request(challenge, { code_challenge_method: 'plain' }), 'invalid_request'],
        ['token response type', request(challenge, { response_type: 'token' }), 'unsupported_response_type'],
      ];
      for (const [what, q, error] of cases) {
        const r = await fetch(authorizeUrl(q), { redirect: 'manual' });
        assert.equal(r.status, 302, what);
        assert.equal(new URL(r.headers.get('location')!).searchParams.get('error'), error, what);
      }
      const denied = await consent(request(challenge), 'bob', 'bob-password', 'deny');
      assert.deepEqual([denied.query!.get('error'), denied.query!.get('state')], ['access_denied', 'xyz']);
      // The installed client has no redirect URI: not a client of this flow.
      const installed = await fetch(authorizeUrl(request(challenge, { client_id: client.id })), { redirect: 'manual' });
      assert.equal(installed.status, 400);
    });

    it('refuses a PKCE mismatch, a replayed code (and revokes what it gave), an expired code, another client, another redirect URI', async () => {
      const { verifier, challenge } = pkce();
      const mismatch = await consent(request(challenge), 'bob', 'bob-password');
      const bad = await exchange(mismatch.query!.get('code')!, pkce().verifier);
      assert.deepEqual([bad.status, bad.body.error], [400, 'invalid_grant']);
      assert.match(bad.body.error_description, /code_verifier/);
      assert.equal((await exchange(mismatch.query!.get('code')!, verifier)).body.error, 'invalid_grant', 'spent by the failed try');
      // Replay: the first exchange works, the second is refused and the first token stops working.
      const fresh = pkce();
      const granted = await consent(request(fresh.challenge), 'bob', 'bob-password');
      const first = await exchange(granted.query!.get('code')!, fresh.verifier);
      assert.equal(first.status, 200);
      assert.equal((await api('GET', '/v1/devices', first.body.access_token)).status, 200);
      // A replay by another client (whoever saw the spent code, with a client of their own) is refused and revokes nothing.
      const other = (await api('POST', '/v1/products/prod-a/clients', f.tokens.alice, { name: 'Other Web', type: 'web', redirect_uri: 'https://other.example/cb' })).body.client;
      const foreign = await exchange(granted.query!.get('code')!, fresh.verifier, { client_id: other.id, client_secret: other.secret });
      assert.deepEqual([foreign.status, foreign.body.error_description], [400, 'The authorization code was issued to another client']);
      assert.equal((await api('GET', '/v1/devices', first.body.access_token)).status, 200, 'not revoked by a stranger\'s replay');
      const replay = await exchange(granted.query!.get('code')!, fresh.verifier);
      assert.deepEqual([replay.status, replay.body.error], [400, 'invalid_grant']);
      assert.match(replay.body.error_description, /used already/);
      assert.equal((await api('GET', '/v1/devices', first.body.access_token)).status, 401, 'revoked after the replay');
      // Another client, another redirect URI.
      const p3 = pkce();
      const g3 = await consent(request(p3.challenge), 'bob', 'bob-password');
      assert.equal((await exchange(g3.query!.get('code')!, p3.verifier, { client_id: other.id, client_secret: other.secret })).body.error_description, 'The authorization code was issued to another client');
      // ... and is neither spent nor revoking: its own client then exchanges it, and the customer's sessions live on.
      const mine = await exchange(g3.query!.get('code')!, p3.verifier);
      assert.equal(mine.status, 200, JSON.stringify(mine.body));
      assert.equal((await api('GET', '/v1/devices', mine.body.access_token)).status, 200);
      const p4 = pkce();
      const g4 = await consent(request(p4.challenge), 'bob', 'bob-password');
      assert.equal((await exchange(g4.query!.get('code')!, p4.verifier, { redirect_uri: 'https://kitchen.example/other' })).body.error_description, 'redirect_uri is not the one of the authorization request');
      // Expired: a code made to last a second, exchanged after it.
      const p5 = pkce();
      const bob = (await f.bridge.store.linkedCustomer(f.products.A, f.users.bob)).id;
      await f.bridge.store.createAuthorizationCode({ code: 'expired-code-0123456789', clientId: web.id, customerId: bob, redirectUri: REDIRECT, codeChallenge: p5.challenge, ttlSeconds: 1 });
      await sleep(1100);
      assert.equal((await exchange('expired-code-0123456789', p5.verifier)).body.error_description, 'The authorization code has expired');
      assert.equal((await exchange('never-issued', p5.verifier)).body.error, 'invalid_grant');
      // In OAuth mode, the other two ways are refused.
      assert.equal((await api('POST', '/v1/products/prod-a/customers', null, { email: 'zed@example.com', password: 'zed-password' }, basic(client))).status, 400);
      assert.equal((await token({ grant_type: 'client_credentials', scope: 'customer=ned@example.com', client_id: client.id, client_secret: client.secret })).body.error, 'unauthorized_client');
    });
  });

  describe('claiming and unclaiming', () => {
    let dora: string;
    let doraId: string;
    before(async () => {
      await mode('simple');
      const made = await api('POST', '/v1/products/prod-a/customers', null, { email: 'dora@example.com', password: 'dora-password' }, basic(client));
      dora = made.body.access_token;
      doraId = made.body.customer.id;
    });

    it('claims a device with a claim code the real agent presents once connected; the code goes to no one else; a spent, foreign or unknown code claims nothing', async () => {
      const claim = await api('POST', '/v1/device_claims', dora);
      assert.equal(claim.status, 200, JSON.stringify(claim.body));
      assert.deepEqual(claim.body.device_ids, []);
      const code = claim.body.claim_code as string;
      assert.ok(code.length >= 32 && code.length <= 63);
      // Alice watches every event of her product, over MQTT and SSE: the code must reach neither.
      const watcher = await app(f.port, 'alice-watch', f.tokens.alice);
      const seen: string[] = [];
      watcher.on('message', (topic) => seen.push(topic));
      await watcher.subscribeAsync('dev/+/evt/#', { qos: 0 });
      const stream = (await particle.getEventStream({ product: 'prod-a', auth: f.tokens.alice } as never)) as unknown as { on(e: string, f: (x: { name: string }) => void): void; abort(): void };
      const streamed: string[] = [];
      stream.on('event', (e) => streamed.push(e.name));
      const flash = new MemoryFlash(emptyFlash(256 * 1024));
      flash.state.slots[0].set(image({ deviceId: A2, secret: SECRET[A2], product: Number(f.products.A), firmware: 1, app: `cloud.setClaimCode(${JSON.stringify(code)}); cloud.variable('temp', 20.5);`, options: 'keepalive: 5, backoffMin: 50' }));
      const agent = new VmDevice({ flash, host: '127.0.0.1', port: f.port });
      agent.start();
      try {
        for (let i = 0; i < 200 && (await f.bridge.store.getDevice(A2))!.customerId !== doraId; i++) await sleep(25);
        assert.equal((await f.bridge.store.getDevice(A2))!.customerId, doraId, 'claimed by the code');
        assert.equal((await api('GET', '/v1/devices/' + A2 + '/temp', dora)).body.result, 20.5, 'dora reads her device');
        assert.deepEqual((await api('POST', '/v1/device_claims', dora)).body.device_ids, [A2]);
      } finally {
        agent.stop();
      }
      await sleep(200);
      assert.ok(!seen.some((t) => t.endsWith(CLAIM_CODE_EVENT)), 'no MQTT subscriber got the claim code: ' + seen);
      assert.ok(!streamed.includes(CLAIM_CODE_EVENT), 'no stream got the claim code');
      stream.abort();
      await watcher.endAsync();
      // The same code again, from another device of the product (a1 is cust1's): nothing changes.
      const a1 = await device(f.port, A1);
      await a1.publishAsync(topics.device.event(A1, CLAIM_CODE_EVENT), Buffer.from(encode('event', { data: code, ttl: 60 })), { qos: 1 });
      const other = (await api('POST', '/v1/device_claims', dora)).body.claim_code as string;
      await a1.publishAsync(topics.device.event(A1, CLAIM_CODE_EVENT), Buffer.from(encode('event', { data: other, ttl: 60 })), { qos: 1 });
      await a1.publishAsync(topics.device.event(A1, CLAIM_CODE_EVENT), Buffer.from(encode('event', { data: 'no-such-code-0123456789', ttl: 60 })), { qos: 1 });
      assert.ok(a1.connected, 'a refused code does not end the session');
      await a1.endAsync();
      assert.notEqual((await f.bridge.store.getDevice(A1))!.customerId, doraId, "another customer's device is not taken by a code");
      const refusals = (await f.bridge.store.auditLog({ action: 'device.claim' })).filter((e) => !e.allowed).map((e) => e.reason);
      assert.ok(refusals.includes('the claim code was spent by another device'), refusals.join('; '));
      assert.ok(refusals.includes('the device belongs to another customer'), refusals.join('; '));
      assert.ok(refusals.includes('unknown claim code'), refusals.join('; '));
    });

    it('gives claim codes with the product in the path (particle-api-js getClaimCode): a customer for its own product only, a user with device.add on it', async () => {
      const mine = (await particle.getClaimCode({ product: 'prod-a', auth: dora })).body as unknown as { claim_code: string; device_ids: string[] };
      assert.ok(mine.claim_code.length >= 32 && Array.isArray(mine.device_ids));
      assert.equal((await api('POST', '/v1/products/' + f.products.A + '/device_claims', dora)).status, 200, 'by id as by slug');
      assert.equal((await api('POST', '/v1/products/prod-b/device_claims', dora)).status, 404, 'not its product');
      const developer = (await particle.getClaimCode({ product: 'prod-a', auth: f.tokens.erin })).body as unknown as { claim_code: string };
      assert.ok(developer.claim_code.length >= 32);
      assert.equal((await api('POST', '/v1/products/prod-a/device_claims', f.tokens.carol)).status, 403, 'a Viewer adds no devices');
      assert.equal((await api('POST', '/v1/products/prod-a/device_claims', f.tokens.bob)).status, 404, 'not on the team');
    });

    it("gives a user a claim code without a product (particle-api-js getClaimCode({auth})): it claims a device of a product the user may add devices to, and no other", async () => {
      const got = await particle.getClaimCode({ auth: f.tokens.erin } as never);
      const code = (got.body as unknown as { claim_code: string; device_ids: string[] }).claim_code;
      assert.ok(code.length >= 32);
      assert.deepEqual((got.body as unknown as { device_ids: string[] }).device_ids, []);
      // B1 is product B's, where erin adds nothing: refused, and the code stays unspent.
      const b1 = await device(f.port, B1);
      await b1.publishAsync(topics.device.event(B1, CLAIM_CODE_EVENT), Buffer.from(encode('event', { data: code, ttl: 60 })), { qos: 1 });
      await b1.endAsync();
      assert.equal((await f.bridge.store.getDevice(B1))!.ownerUserId, null);
      const refusals = (await f.bridge.store.auditLog({ action: 'device.claim' })).filter((e) => !e.allowed && e.resourceId === B1).map((e) => e.reason);
      assert.deepEqual(refusals, ['the user may not add devices to this product']);
      // A1 is product A's, where erin is a developer, but a customer holds it: a code takes no device from its claimer.
      const a1 = await device(f.port, A1);
      await a1.publishAsync(topics.device.event(A1, CLAIM_CODE_EVENT), Buffer.from(encode('event', { data: code, ttl: 60 })), { qos: 1 });
      await a1.endAsync();
      for (let i = 0; i < 200 && !(await f.bridge.store.auditLog({ action: 'device.claim' })).some((e) => e.resourceId === A1 && e.reason === 'the device belongs to a customer'); i++) await sleep(25);
      assert.deepEqual([(await f.bridge.store.getDevice(A1))!.ownerUserId, (await f.bridge.store.getDevice(A1))!.customerId], [null, (await f.bridge.store.findCustomer(f.products.A, 'cust1@example.com'))!.id], 'still the customer\'s alone');
      // A2, released by the team from dora: claimed for erin with the same code (a refused one is not spent).
      assert.equal((await api('DELETE', '/v1/products/prod-a/devices/' + A2 + '/owner', f.tokens.alice)).status, 204);
      const a2 = await device(f.port, A2);
      await a2.publishAsync(topics.device.event(A2, CLAIM_CODE_EVENT), Buffer.from(encode('event', { data: code, ttl: 60 })), { qos: 1 });
      await a2.endAsync();
      for (let i = 0; i < 200 && (await f.bridge.store.getDevice(A2))!.ownerUserId !== f.users.erin; i++) await sleep(25);
      assert.equal((await f.bridge.store.getDevice(A2))!.ownerUserId, f.users.erin);
      assert.deepEqual((await api('POST', '/v1/device_claims', f.tokens.erin)).body.device_ids, [A2], 'her devices, whatever their product');
      // Another user's code does not take it from her either.
      const frank = (await api('POST', '/v1/device_claims', f.tokens.alice)).body.claim_code as string;
      const again = await device(f.port, A2);
      await again.publishAsync(topics.device.event(A2, CLAIM_CODE_EVENT), Buffer.from(encode('event', { data: frank, ttl: 60 })), { qos: 1 });
      await again.endAsync();
      for (let i = 0; i < 200 && !(await f.bridge.store.auditLog({ action: 'device.claim' })).some((e) => e.resourceId === A2 && e.reason === 'the device is claimed by another user'); i++) await sleep(25);
      assert.equal((await f.bridge.store.getDevice(A2))!.ownerUserId, f.users.erin);
      // A product given is still checked; a bad one is named.
      assert.equal((await api('POST', '/v1/device_claims', f.tokens.erin, { product: 'prod-b' })).status, 404);
      assert.deepEqual(await api('POST', '/v1/device_claims', f.tokens.erin, { product: [1] }), { status: 400, body: { ok: false, error: 'product must be a product id or slug', error_description: 'product must be a product id or slug' } });
    });

    it("claims by id (POST /v1/devices) only a device of the customer's product no other customer holds; another customer's device is a 404 everywhere", async () => {
      assert.equal((await api('POST', '/v1/devices', dora, { id: A1 })).status, 404, "cust1's device");
      assert.equal((await api('POST', '/v1/devices', dora, { id: 'b1b1b1b1b1b1b1b1b1b1b1b1' })).status, 404, 'another product');
      assert.equal((await api('POST', '/v1/devices', dora, {})).status, 400);
      for (const [method, path] of [['GET', '/v1/devices/' + A1], ['GET', '/v1/devices/' + A1 + '/temp'], ['POST', '/v1/devices/' + A1 + '/setLed']] as const)
        assert.equal((await api(method, path, dora, method === 'POST' ? { arg: 'on' } : undefined)).status, 404, method + ' ' + path);
      // A2 is claimed by a user (erin, above): a customer cannot take it by id either (it had before, and the device had two claimers).
      assert.equal((await f.bridge.store.getDevice(A2))!.ownerUserId, f.users.erin);
      assert.equal((await api('POST', '/v1/devices', dora, { id: A2 })).status, 404, "a user's device");
      assert.equal((await f.bridge.store.getDevice(A2))!.customerId, null);
      // Unclaimed by the team, then claimed back by id.
      assert.equal((await api('DELETE', '/v1/products/prod-a/devices/' + A2 + '/owner', f.tokens.alice)).status, 204);
      const byId = await api('POST', '/v1/devices', dora, { id: A2 });
      assert.deepEqual([byId.status, byId.body.customer_id], [200, doraId]);
    });

    it('ends a customer\'s access within a second of unclaiming, with an event stream and an MQTT subscription open', async () => {
      assert.equal((await f.bridge.store.getDevice(A2))!.customerId, doraId);
      const sub = await app(f.port, 'dora-app', dora);
      const got: string[] = [];
      sub.on('message', (topic) => got.push(topic));
      await sub.subscribeAsync(`dev/${A2}/evt/#`, { qos: 0 });
      const stream = (await particle.getEventStream({ deviceId: A2, auth: dora } as never)) as unknown as { on(e: string, f: (x: { name: string; data: string }) => void): void; abort(): void };
      const streamed: string[] = [];
      stream.on('event', (e) => streamed.push(e.name + ':' + e.data));
      const a2: MqttClient = await device(f.port, A2);
      const publish = (data: string) => a2.publishAsync(topics.device.event(A2, 'door'), Buffer.from(encode('event', { data, ttl: 60 })), { qos: 1 });
      await publish('before');
      for (let i = 0; i < 40 && !(got.length && streamed.includes('door:before')); i++) await sleep(25);
      assert.ok(got.includes(`dev/${A2}/evt/door`), 'the subscription got the event while claimed');
      assert.ok(streamed.includes('door:before'), 'the stream got the event while claimed');
      const t0 = Date.now();
      assert.equal((await api('DELETE', '/v1/products/prod-a/devices/' + A2 + '/owner', f.tokens.alice)).status, 204);
      await publish('after');
      await sleep(300);
      assert.ok(Date.now() - t0 < 1000 + 300);
      assert.equal(got.filter((t) => t === `dev/${A2}/evt/door`).length, 1, 'nothing after the unclaim over MQTT');
      assert.ok(!streamed.includes('door:after'), 'nothing after the unclaim on the stream');
      assert.equal((await api('GET', '/v1/devices/' + A2, dora)).status, 404, 'the device is gone for her');
      stream.abort();
      await a2.endAsync();
      await sub.endAsync();
    });
  });
});
