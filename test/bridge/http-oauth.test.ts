/**
 * The HTTP API's foundation, driven by Particle's own client (particle-api-js):
 * logging in at /oauth/token, the bearer token, refresh, refusals in
 * Particle's and RFC 6749's shapes, body limits, unknown routes.
 */
import assert from 'node:assert/strict';
import Particle from 'particle-api-js';
import { startFixture, type Fixture, type ParticleError } from '../helpers/bridge-fixture.js';

describe('HTTP API: OAuth and the bearer token', function () {
  this.timeout(20000);
  let f: Fixture;
  let base: string;
  let particle: InstanceType<typeof Particle>;

  before(async () => {
    f = await startFixture({ httpPort: 0 });
    base = 'http://127.0.0.1:' + f.bridge.ports.http;
    particle = new Particle({ baseUrl: base });
  });
  after(() => f.close());

  /** The JSON of a response, loosely typed for assertions. */
  const j = async (r: Response): Promise<Record<string, any>> => (await r.json()) as Record<string, any>;
  const form = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(base + '/oauth/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(fields) });

  it('logs in with particle-api-js and reads /v1/user with the token', async () => {
    const login = await particle.login({ username: 'alice', password: 'alice-password' });
    assert.equal(login.statusCode, 200);
    assert.equal(login.body.token_type, 'bearer');
    assert.match(login.body.access_token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
    assert.ok(login.body.expires_in > 7776000 - 5 && login.body.expires_in <= 7776000, "Particle's 90 days");
    const me = await particle.getUserInfo({ auth: login.body.access_token });
    assert.equal(me.body.username, 'alice');
  });

  it('changes a password and a username with particle-api-js, proven by the current password; invalidate_tokens ends every token', async () => {
    await f.bridge.store.createUser('frank', 'frank-password');
    const token = (await particle.login({ username: 'frank', password: 'frank-password' })).body.access_token;
    await assert.rejects(particle.changeUserPassword({ currentPassword: 'wrong', password: 'new-password', auth: token }), (e: ParticleError) => e.statusCode === 403);
    await particle.changeUserPassword({ currentPassword: 'frank-password', password: 'new-password', auth: token });
    await assert.rejects(particle.login({ username: 'frank', password: 'frank-password' }), (e: ParticleError) => e.statusCode === 400);
    assert.equal((await particle.login({ username: 'frank', password: 'new-password' })).statusCode, 200);
    // A taken username is refused and changes nothing; so are a username that is no e-mail address and a short or empty password.
    await f.bridge.store.createUser('taken@example.com', 'taken-password');
    await assert.rejects(particle.changeUsername({ currentPassword: 'new-password', username: 'Taken@Example.com', auth: token }), (e: ParticleError) => e.statusCode === 409);
    await assert.rejects(particle.changeUsername({ currentPassword: 'new-password', username: 'frankie', auth: token }), (e: ParticleError) => e.statusCode === 400 && e.body.error === 'username must be an e-mail address');
    for (const password of ['', 'short12'])
      await assert.rejects(particle.changeUserPassword({ currentPassword: 'new-password', password, auth: token }), (e: ParticleError) => e.statusCode === 400 && e.body.error === 'password must be at least 8 characters');
    assert.equal((await particle.login({ username: 'frank', password: 'new-password' })).statusCode, 200, 'nothing changed');
    const nothing = await fetch(base + '/v1/user', { method: 'PUT', headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' }, body: JSON.stringify({ account_info: { first_name: 'F' } }) });
    assert.deepEqual([nothing.status, await j(nothing)], [400, { ok: false, error: 'This bridge keeps no account_info; send username or password, with current_password', error_description: 'This bridge keeps no account_info; send username or password, with current_password' }]);
    await particle.changeUsername({ currentPassword: 'new-password', username: 'Frank.Renamed@example.com', invalidateTokens: true, auth: token });
    await assert.rejects(particle.getUserInfo({ auth: token }), (e: ParticleError) => e.statusCode === 401, 'invalidate_tokens ended the token it came with');
    const again = (await particle.login({ username: 'frank.renamed@example.com', password: 'new-password' })).body.access_token;
    assert.equal((await particle.getUserInfo({ auth: again })).body.username, 'frank.renamed@example.com');
    const audited = (await f.bridge.store.auditLog({ action: 'user.update' })).map((e) => e.reason);
    assert.deepEqual(audited.sort(), ['password changed', 'username changed']);
  });

  it('signs a user up when the bridge allows it: an e-mail address and a password of 8 characters or more', async () => {
    const g = await startFixture({ httpPort: 0, signup: true });
    try {
      const api = new Particle({ baseUrl: 'http://127.0.0.1:' + g.bridge.ports.http });
      assert.equal((await api.createUser({ username: 'new@example.com', password: 'new-password' })).statusCode, 201);
      assert.equal((await api.login({ username: 'new@example.com', password: 'new-password' })).statusCode, 200);
      const refusal = (username: string, password: string) =>
        api.createUser({ username, password }).then(() => 'created', (e: ParticleError) => e.statusCode + ' ' + e.body.error);
      assert.equal(await refusal('newbie', 'new-password'), '400 username must be an e-mail address');
      assert.equal(await refusal('other@example.com', 'short'), '400 password must be at least 8 characters');
      assert.equal(await refusal('NEW@example.com', 'new-password'), '409 username new@example.com is taken');
    } finally {
      await g.close();
    }
  });

  it("with sign-up off (the default), the bridge's owner makes accounts (POST /v1/bridge/users); anyone else is refused", async () => {
    const signup = await fetch(base + '/v1/users', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'anon@example.com', password: 'anon-password' }) });
    assert.deepEqual([signup.status, ((await signup.json()) as { error: string }).error], [403, 'Sign-up is turned off on this bridge: its owner makes accounts (POST /v1/bridge/users)']);
    const made = (token: string | null, username: string) =>
      fetch(base + '/v1/bridge/users', { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: 'Bearer ' + token } : {}) }, body: JSON.stringify({ username, password: 'made-password' }) });
    assert.equal((await made(null, 'anon@example.com')).status, 401);
    assert.equal((await made(f.tokens.revoked, 'revoked@example.com')).status, 401);
    const alice = (await particle.login({ username: 'alice', password: 'alice-password' })).body.access_token;
    const byAlice = await made(alice, 'by-alice@example.com');
    assert.deepEqual([byAlice.status, ((await byAlice.json()) as { error: string }).error], [403, "Only the bridge's owner (the account made at its first start) makes accounts here"], "an org Owner is not the bridge's owner");
    // The fixture's bridge made "owner" at its first start.
    const owner = (await particle.login({ username: 'owner', password: 'owner-password' })).body.access_token;
    const ok = await made(owner, 'made@example.com');
    assert.deepEqual([ok.status, ((await ok.json()) as { username: string }).username], [201, 'made@example.com']);
    assert.equal((await particle.login({ username: 'made@example.com', password: 'made-password' })).statusCode, 200);
    assert.equal((await made(owner, 'short@example.com').then((r) => r.status)), 201);
    const ownerId = (await f.bridge.store.findUser('owner'))!.id;
    assert.deepEqual((await f.bridge.store.auditLog({ action: 'user.create' })).filter((e) => e.actorKind === 'user').map((e) => [e.actorId === ownerId, e.allowed]), [[true, true], [true, true], [false, false]]);
  });

  it('lets a page of any origin call the API (CORS, as Particle\'s): a preflight is answered, and every answer, a refusal too, may be read', async () => {
    const pre = await fetch(base + '/v1/devices', { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });
    assert.equal(pre.status, 204);
    assert.deepEqual(
      ['access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers'].map((h) => pre.headers.get(h)),
      ['*', 'GET, HEAD, POST, PUT, DELETE', 'authorization'],
    );
    const token = (await particle.login({ username: 'alice', password: 'alice-password' })).body.access_token;
    const ok = await fetch(base + '/v1/user', { headers: { origin: 'https://app.example.com', authorization: 'Bearer ' + token } });
    assert.deepEqual([ok.status, ok.headers.get('access-control-allow-origin')], [200, '*']);
    const refused = await fetch(base + '/v1/user', { headers: { origin: 'https://app.example.com' } });
    assert.deepEqual([refused.status, refused.headers.get('access-control-allow-origin'), refused.headers.get('access-control-expose-headers')], [401, '*', 'retry-after, www-authenticate']);
  });

  it('refuses wrong credentials and unknown clients in OAuth\'s shape', async () => {
    await assert.rejects(particle.login({ username: 'alice', password: 'wrong' }), (e: ParticleError) => {
      assert.equal(e.statusCode, 400);
      // particle-api-js adds its raw response to the body; the server's fields are these.
      assert.deepEqual([e.body.error, e.body.error_description], ['invalid_grant', 'User credentials are invalid']);
      return true;
    });
    const r = await form({ grant_type: 'password', username: 'alice', password: 'alice-password', client_id: 'nope', client_secret: 'x' });
    assert.equal(r.status, 401);
    assert.equal((await j(r)).error, 'invalid_client');
    // RFC 6749 §5.2: the scheme the client may authenticate with.
    assert.equal(r.headers.get('www-authenticate'), 'Basic realm="flotilla"');
    const cli = await form({ grant_type: 'password', username: 'alice', password: 'alice-password' }, { authorization: 'Basic ' + Buffer.from('particle-cli:client_secret_here').toString('base64') });
    assert.equal(cli.status, 200, "particle-cli's client in Basic auth");
    // `particle token create` (particle-cli cmd/token.js): the client `user`, its secret in the form, as Particle's cloud takes it.
    const create = await form({ grant_type: 'password', username: 'alice', password: 'alice-password', client_id: 'user', client_secret: 'client_secret_here', expires_in: '0' });
    assert.equal(create.status, 200, "particle token create's client");
    assert.equal((await j(create)).expires_in, 0);
    assert.equal((await form({ grant_type: 'password', username: 'alice', password: 'alice-password', client_id: 'user', client_secret: 'x' })).status, 401, 'its secret checked');
    const missing = await form({ grant_type: 'password', client_id: 'particle', client_secret: 'particle' });
    assert.deepEqual(await j(missing), { error: 'invalid_request', error_description: 'The username field is required' });
    const other = await form({ grant_type: 'magic', client_id: 'particle', client_secret: 'particle' });
    assert.equal((await j(other)).error, 'unsupported_grant_type');
  });

  it("logs in as a user's own web client's owner with its credentials (particle-api-js loginAsClientOwner); an installed app's client, a product's and Particle's public ones get no one's token", async () => {
    const client = async (type: string, path = '/v1/clients', token = f.tokens.bob) =>
      ((await (await fetch(base + path, { method: 'POST', headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'bob-' + type, type, redirect_uri: 'https://bob.example/cb' }) })).json()) as { client: { id: string; secret: string } });
    const made = await client('web');
    // Before: 400 invalid_scope.
    const owner = new Particle({ baseUrl: base, clientId: made.client.id, clientSecret: made.client.secret });
    const t = (await owner.loginAsClientOwner()).body as { access_token: string; refresh_token?: string };
    assert.equal(t.refresh_token, undefined, 'RFC 6749 §4.4.3: no refresh token for client credentials');
    assert.equal((await particle.getUserInfo({ auth: t.access_token })).body.username, 'bob');
    // Particle's own clients are in every copy of its tools, and a product's client speaks for no user.
    const pub = await form({ grant_type: 'client_credentials', client_id: 'particle', client_secret: 'particle' });
    assert.deepEqual([pub.status, (await j(pub)).error], [400, 'invalid_scope']);
    const wrong = await form({ grant_type: 'client_credentials', client_id: made.client.id, client_secret: 'nope' });
    assert.deepEqual([wrong.status, (await j(wrong)).error], [401, 'invalid_client']);
    // Never a token that never expires, nor one for a century: a leaked client secret mints none past 90 days.
    for (const expires of ['0', '3153600000', String(7776000 + 1)]) {
      const long = await form({ grant_type: 'client_credentials', client_id: made.client.id, client_secret: made.client.secret, expires_in: expires });
      assert.deepEqual([long.status, (await j(long)).error], [400, 'invalid_request'], expires);
    }
    assert.equal((await form({ grant_type: 'client_credentials', client_id: made.client.id, client_secret: made.client.secret, expires_in: '3600' })).status, 200);
    // An installed app's client: its secret is in every copy of the app.
    const app = await client('installed');
    const fromApp = await form({ grant_type: 'client_credentials', client_id: app.client.id, client_secret: app.client.secret });
    assert.deepEqual([fromApp.status, (await j(fromApp)).error], [400, 'unauthorized_client']);
    // A product's client speaks for no user.
    const product = await client('web', '/v1/products/prod-a/clients', f.tokens.alice);
    const fromProduct = await form({ grant_type: 'client_credentials', client_id: product.client.id, client_secret: product.client.secret });
    assert.deepEqual([fromProduct.status, (await j(fromProduct)).error], [400, 'invalid_scope']);
  });

  it('rotates refresh tokens: a used one is refused', async () => {
    const first = await j(await form({ grant_type: 'password', username: 'bob', password: 'bob-password', client_id: 'particle', client_secret: 'particle' }));
    // Only the client it was issued to refreshes it (RFC 6749 §6); another's try leaves it unspent. Before, any client could.
    const stranger = await form({ grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: 'particle-cli', client_secret: 'particle-cli' });
    assert.deepEqual([stranger.status, (await j(stranger)).error_description], [400, 'The refresh token is invalid, expired, already used, or was issued to another client']);
    const second = await form({ grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: 'particle', client_secret: 'particle' });
    assert.equal(second.status, 200);
    const again = await form({ grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: 'particle', client_secret: 'particle' });
    assert.equal(again.status, 400);
    assert.equal((await j(again)).error, 'invalid_grant');
  });

  it('gives a token that never expires for expires_in=0, as Particle', async () => {
    const r = await j(await form({ grant_type: 'password', username: 'bob', password: 'bob-password', client_id: 'particle', client_secret: 'particle', expires_in: '0' }));
    assert.equal(r.expires_in, 0);
    assert.equal((await f.bridge.store.findToken(r.access_token))?.expiresAt, null);
  });

  it('refuses an expires_in that is no whole number of seconds up to 100 years, and stores no token for it', async () => {
    const login = { grant_type: 'password', username: 'bob', password: 'bob-password', client_id: 'particle', client_secret: 'particle' };
    const before = (await f.bridge.store.listTokens({ kind: 'user', id: f.users.bob })).length;
    const refusals: [string, unknown][] = [['form', '1e20'], ['form', '99999999999999'], ['form', '3153600001'], ['form', '1e3'], ['form', '-1'], ['form', '0x10'], ['json', null], ['json', true], ['json', 1.5], ['json', [60]]];
    for (const [kind, v] of refusals) {
      const res = kind === 'form'
        ? await form({ ...login, expires_in: v as string })
        : await fetch(base + '/oauth/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...login, expires_in: v }) });
      assert.deepEqual([res.status, await j(res)], [400, { error: 'invalid_request', error_description: 'expires_in must be a whole number of seconds from 0 (never expires) to 3153600000' }], kind + ' ' + JSON.stringify(v));
    }
    assert.equal((await f.bridge.store.listTokens({ kind: 'user', id: f.users.bob })).length, before);
    // The longest is taken, and every token route can show it.
    const longest = await j(await form({ ...login, expires_in: '3153600000' }));
    assert.ok(longest.expires_in > 3153600000 - 5);
    const listed = await fetch(base + '/v1/access_tokens', { headers: { authorization: 'Bearer ' + longest.access_token } });
    assert.equal(listed.status, 200);
  });

  it('answers 401 without a valid bearer token, and never takes one from the URL', async () => {
    const cases: Record<string, string>[] = [{}, { authorization: 'Bearer nope' }, { authorization: 'Bearer ' + f.tokens.revoked }, { authorization: 'Basic abc' }];
    for (const headers of cases) {
      const r = await fetch(base + '/v1/user', { headers });
      assert.equal(r.status, 401);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer');
      assert.equal((await j(r)).error, 'invalid_token');
    }
    assert.equal((await fetch(base + '/v1/user', { headers: { authorization: 'Bearer ' + f.tokens.alice } })).status, 200);
  });

  it('lists and revokes a user\'s tokens with the username and password in Basic auth (Particle\'s curl -u), counted by the login lock-out', async () => {
    await f.bridge.store.createUser('gina', 'pass:with%25 odd');
    const basic = (name: string, password: string) => ({ authorization: 'Basic ' + Buffer.from(name + ':' + password).toString('base64') });
    const token = (await particle.login({ username: 'gina', password: 'pass:with%25 odd' })).body.access_token;
    // The password is taken as sent: no form-decoding (that is for OAuth clients), and a colon in it is the password's.
    const listed = await fetch(base + '/v1/access_tokens', { headers: basic('Gina', 'pass:with%25 odd') });
    assert.equal(listed.status, 200);
    const handles = (await j(listed)) as unknown as { token: string; client: string }[];
    assert.deepEqual(handles.map((t) => t.client), ['particle-api']);
    // Wrong passwords, and a product client's credentials, are no user here.
    const refusals = [basic('gina', 'wrong'), basic('nobody', 'x'), basic('particle', 'particle'), { authorization: 'Basic !!!' }];
    for (const headers of refusals) {
      const r = await fetch(base + '/v1/access_tokens', { headers });
      assert.deepEqual([r.status, r.headers.get('www-authenticate'), await j(r)], [401, 'Basic realm="flotilla"', { error: 'invalid_grant', error_description: 'User credentials are invalid' }], headers.authorization);
    }
    // Other routes do not take a password: there it is a client's Basic auth, which names no product client.
    assert.equal((await fetch(base + '/v1/user', { headers: basic('gina', 'pass:with%25 odd') })).status, 401);
    const cut = await fetch(base + '/v1/access_tokens', { method: 'DELETE', headers: basic('gina', 'pass:with%25 odd') });
    assert.deepEqual([cut.status, await j(cut)], [200, { ok: true }]);
    assert.equal((await fetch(base + '/v1/user', { headers: { authorization: 'Bearer ' + token } })).status, 401, 'every token of hers ended');
    // Guessing is the token endpoint's guessing: ten wrong passwords lock the name, the right one included.
    await f.bridge.store.createUser('hal', 'hal-password');
    for (let i = 0; i < 10; i++) assert.equal((await fetch(base + '/v1/access_tokens', { headers: basic('hal', 'guess' + i) })).status, 401);
    const locked = await fetch(base + '/v1/access_tokens', { headers: basic('hal', 'hal-password') });
    assert.equal(locked.status, 429);
    assert.ok(Number(locked.headers.get('retry-after')) > 0);
    await assert.rejects(particle.login({ username: 'hal', password: 'hal-password' }), (e: ParticleError) => e.statusCode === 429, 'one count for both ways in');
    const audit = (await f.bridge.store.auditLog()).filter((e) => e.reason === 'invalid credentials (password)');
    assert.ok(audit.length >= 14, 'each refusal is audited');
  });

  it('says where the token goes when one comes as access_token in the query string or the body (Particle\'s deprecated forms), and takes it from neither', async () => {
    const where = {
      error: 'invalid_request',
      error_description: 'Send the access token in the Authorization header (Authorization: Bearer <token>); one in the query string or the body is not taken (Particle deprecated both: URLs end up in logs)',
    };
    const answers = [
      await fetch(base + '/v1/user?access_token=' + f.tokens.alice),
      await fetch(base + '/v1/devices/events?access_token=' + f.tokens.alice),
      // Particle's classic example: curl …/v1/devices/<id>/<fn> -d arg=on -d access_token=…
      await fetch(base + '/v1/devices/' + 'a'.repeat(24) + '/setLed', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'arg=on&access_token=' + f.tokens.alice }),
      await fetch(base + '/v1/products/prod-a/events', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x', access_token: f.tokens.alice }) }),
    ];
    for (const r of answers) {
      assert.deepEqual([r.status, r.headers.get('www-authenticate'), await j(r)], [401, 'Bearer', where], r.url);
    }
    const audit = (await f.bridge.store.auditLog()).filter((e) => e.reason === 'invalid credentials (misplaced)');
    assert.ok(audit.length >= 4, 'each refusal is audited as such');
  });

  it('refuses oversize and malformed bodies, and unknown routes, without a stack trace; the token endpoint in OAuth\'s shape', async () => {
    const big = await fetch(base + '/oauth/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ x: 'y'.repeat(2 * 1024 * 1024) }) });
    assert.deepEqual([big.status, await j(big)], [413, { error: 'invalid_request', error_description: 'Request body is larger than 1048576 bytes' }]);
    const bad = await fetch(base + '/oauth/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' });
    assert.deepEqual([bad.status, await j(bad)], [400, { error: 'invalid_request', error_description: 'The body is not a JSON object' }]);
    const list = await fetch(base + '/oauth/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' });
    assert.deepEqual([list.status, await j(list)], [400, { error: 'invalid_request', error_description: 'The body is not a JSON object' }]);
    const xml = await fetch(base + '/oauth/token', { method: 'POST', headers: { 'content-type': 'text/xml' }, body: '<a/>' });
    assert.deepEqual([xml.status, await j(xml)], [415, { error: 'invalid_request', error_description: 'Send application/json or application/x-www-form-urlencoded' }]);
    // The same route with a trailing slash, and the same refusals.
    const slash = await fetch(base + '/oauth/token/', { method: 'POST', headers: { 'content-type': 'text/xml' }, body: '<a/>' });
    assert.deepEqual([slash.status, await j(slash)], [415, { error: 'invalid_request', error_description: 'Send application/json or application/x-www-form-urlencoded' }]);
    // Elsewhere the API's own shape.
    const other = await fetch(base + '/v1/products/prod-a/groups', { method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.alice, 'content-type': 'application/json' }, body: '{"a":' });
    assert.deepEqual([other.status, await j(other)], [400, { ok: false, error: 'The body is not a JSON object', error_description: 'The body is not a JSON object' }]);
    assert.deepEqual([(await fetch(base + '/v1/nothing')).status, (await fetch(base + '/oauth/token')).status], [404, 405]);
    // A 405 names the methods the path takes (RFC 9110 §15.5.6).
    assert.equal((await fetch(base + '/oauth/token')).headers.get('allow'), 'POST');
    const patch = await fetch(base + '/v1/user', { method: 'PATCH', headers: { authorization: 'Bearer ' + f.tokens.alice } });
    assert.deepEqual([patch.status, patch.headers.get('allow')], [405, 'GET, HEAD, PUT']);
  });
});
