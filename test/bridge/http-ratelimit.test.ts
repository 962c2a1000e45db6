/**
 * Limits of the HTTP API: requests per window (per access token; per address
 * without a valid one), logins with a lock-out after repeated failures, event
 * streams opened per window and open at once (per address). 429 with
 * Retry-After, as Particle answers.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { RateLimiter, defaultRateLimits } from '../../bridge/src/http/ratelimit.js';
import { startFixture, type Fixture } from '../helpers/bridge-fixture.js';

describe('HTTP API: rate limits', function () {
  this.timeout(20000);

  describe('RateLimiter (fake clock)', () => {
    /** Counts one login's outcome; the limiter must not be locked for it. */
    const outcome = (l: RateLimiter, address: string, username: string, good: boolean) => {
      const count = l.passwordLogin(address, username);
      assert.equal(typeof count, 'function', username + ' at ' + address + ' is not locked');
      (count as (good: boolean) => void)(good);
    };
    /** Seconds `username` at `address` stays locked, or null (a login begun is ended with no verdict). */
    const locked = (l: RateLimiter, address: string, username: string) => {
      const r = l.passwordLogin(address, username);
      if (typeof r === 'number') return r;
      r(null);
      return null;
    };
    it('counts per address in fixed windows, and a new window starts afresh', () => {
      let now = 1000;
      const l = new RateLimiter({ ...defaultRateLimits, requests: { limit: 2, windowMs: 1000 } }, () => now);
      assert.equal(l.request('a'), null);
      assert.equal(l.request('a'), null);
      assert.equal(l.request('a'), 1, 'third in the window: wait about a second');
      assert.equal(l.request('b'), null, 'another address has its own count');
      now += 1000;
      assert.equal(l.request('a'), null);
    });

    it('locks a username out at an address after wrong passwords; a good login for it clears its count; failures older than the lock time are forgotten', () => {
      let now = 0;
      const l = new RateLimiter({ ...defaultRateLimits, tokenFailures: { limit: 3, lockMs: 60000 } }, () => now);
      outcome(l, 'a', 'alice', false);
      outcome(l, 'a', 'alice', false);
      outcome(l, 'a', 'alice', true);
      outcome(l, 'a', 'alice', false);
      outcome(l, 'a', 'alice', false);
      assert.equal(locked(l, 'a', 'alice'), null, 'the good login cleared the two before it');
      now += 60000;
      outcome(l, 'a', 'alice', false);
      assert.equal(locked(l, 'a', 'alice'), null, 'the two before are a lock time old: this one starts afresh');
      outcome(l, 'a', 'alice', false);
      outcome(l, 'a', 'alice', false);
      assert.equal(locked(l, 'a', 'alice'), 60, 'three within a minute');
      assert.equal(locked(l, 'a', 'bob'), null, 'another username at the address has its own count');
      assert.equal(locked(l, 'b', 'alice'), null, 'and so does the username at another address');
      now += 60000;
      assert.equal(locked(l, 'a', 'alice'), null, 'the lock ends');
    });

    it('counts logins still being checked as the failures they may be: many at once cannot all be checked before the first failure counts', () => {
      let now = 0;
      const l = new RateLimiter({ ...defaultRateLimits, tokenFailures: { limit: 3, lockMs: 60000 }, tokenFailuresPerAddress: { limit: 5, lockMs: 60000 } }, () => now);
      const begun = [l.passwordLogin('a', 'alice'), l.passwordLogin('a', 'alice'), l.passwordLogin('a', 'alice')] as ((good: boolean | null) => void)[];
      assert.ok(begun.every((b) => typeof b === 'function'));
      assert.equal(l.passwordLogin('a', 'alice'), 1, 'three being checked could lock alice here: the fourth waits');
      assert.equal(locked(l, 'a', 'bob'), null, 'another name is not held up by them');
      begun[0](true);
      begun[0](false); // once only: a second outcome counts nothing
      assert.equal(locked(l, 'a', 'alice'), null, 'a good one ended: the count starts again');
      begun[1](null);
      begun[2](false);
      // The address: five being checked under any names hold it up; one never ended stops counting after the lock time.
      for (const u of ['c', 'd', 'e', 'f']) assert.equal(typeof l.passwordLogin('a', u), 'function');
      assert.equal(l.passwordLogin('a', 'g'), 1, 'one failure and four being checked: the address waits');
      now += 60000;
      assert.equal(locked(l, 'a', 'g'), null, 'the ones never ended no longer count');
    });

    it('locks an address out after wrong passwords for any usernames, and no good login clears that count', () => {
      const l = new RateLimiter({ ...defaultRateLimits, tokenFailures: { limit: 100, lockMs: 60000 }, tokenFailuresPerAddress: { limit: 4, lockMs: 60000 } }, () => 0);
      for (const u of ['bob', 'carol', 'dave']) outcome(l, 'a', u, false);
      // Someone with an account of their own logs in between guesses at others.
      outcome(l, 'a', 'eve', true);
      outcome(l, 'a', 'frank', false);
      assert.equal(locked(l, 'a', 'eve'), 60, 'every username at the address is locked, the good one too');
      assert.equal(locked(l, 'b', 'eve'), null);
    });

    it('bounds streams open at once; closing one frees its slot, twice is harmless', () => {
      const l = new RateLimiter({ ...defaultRateLimits, streams: { opens: 100, windowMs: 60000, concurrent: 2 } });
      const s1 = l.stream('a');
      const s2 = l.stream('a');
      assert.equal(typeof l.stream('a'), 'number');
      (s1 as { close(): void }).close();
      (s1 as { close(): void }).close();
      assert.equal(typeof l.stream('a'), 'object');
      assert.equal(typeof l.stream('a'), 'number');
      assert.ok(s2);
    });
  });

  describe('on a bridge', () => {
    let f: Fixture;
    let base: string;
    before(async () => {
      f = await startFixture({
        httpPort: 0,
        rateLimits: {
          requests: { limit: 40, windowMs: 60000 }, token: { limit: 100, windowMs: 60000 }, tokenFailures: { limit: 3, lockMs: 60000 }, tokenFailuresPerAddress: { limit: 6, lockMs: 60000 },
          streams: { opens: 100, windowMs: 60000, concurrent: 2 },
          unauthenticatedAudits: { limit: 1000, windowMs: 60000 },
        },
      });
      base = 'http://127.0.0.1:' + f.bridge.ports.http;
    });
    after(() => f.close());

    const token = (fields: Record<string, string>) =>
      fetch(base + '/oauth/token', {
        method: 'POST', headers: { authorization: 'Basic ' + Buffer.from('particle:particle').toString('base64'), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields),
      });
    const login = (username: string, password: string) => token({ grant_type: 'password', username, password });

    it('locks password logins out after wrong passwords: a username at the address, then the whole address; a good login clears only its own count; other grants never lock', async () => {
      // Refresh tokens are random, not guessable: wrong ones are refused and never lock.
      for (let i = 0; i < 8; i++) assert.equal((await token({ grant_type: 'refresh_token', refresh_token: 'nope-' + i })).status, 400);
      assert.equal((await login('alice', 'alice-password')).status, 200);
      for (let i = 0; i < 2; i++) assert.equal((await login('alice', 'wrong')).status, 400);
      assert.equal((await login('alice', 'alice-password')).status, 200, 'two wrong, then right: her count starts again');
      for (let i = 0; i < 2; i++) assert.equal((await login('alice', 'wrong')).status, 400);
      assert.equal((await login('ALICE', 'wrong')).status, 400, 'the third within the lock time, in any case, locks alice here');
      const locked = await login('alice', 'alice-password');
      assert.equal(locked.status, 429);
      // Spaces around the name are the same account, as the store looks it up: not a lock of their own.
      assert.equal((await login(' alice\t', 'alice-password')).status, 429);
      assert.ok(Number(locked.headers.get('retry-after')) > 0);
      // Five wrong passwords from this address so far; bob may still log in, which clears nothing of the address's.
      assert.equal((await login('bob', 'bob-password')).status, 200);
      assert.equal((await login('carol', 'wrong')).status, 400);
      assert.equal((await login('bob', 'bob-password')).status, 429, 'the sixth wrong one locked the address, for everyone');
    });

    it('bounds event streams open at once per address', async () => {
      const open = () =>
        new Promise<{ status: number; close(): void }>((resolve, reject) => {
          const req = request(base + '/v1/devices/events/x', { headers: { authorization: 'Bearer ' + f.tokens.alice } }, (res) => resolve({ status: res.statusCode ?? 0, close: () => req.destroy() }));
          req.on('error', (e) => (e.message === 'socket hang up' ? undefined : reject(e)));
          req.end();
        });
      const a = await open();
      const b = await open();
      const c = await open();
      assert.deepEqual([a.status, b.status, c.status], [200, 200, 429]);
      a.close();
      await new Promise((r) => setTimeout(r, 100));
      const d = await open();
      assert.equal(d.status, 200, 'a closed stream frees its slot');
      b.close();
      d.close();
    });

    it('answers 429 with Retry-After past the request limit, in Particle\'s error shape', async () => {
      let res: Response | null = null;
      for (let i = 0; i < 60; i++) {
        res = await fetch(base + '/v1/user', { headers: { authorization: 'Bearer ' + f.tokens.alice } });
        if (res.status === 429) break;
        await res.arrayBuffer();
      }
      assert.equal(res!.status, 429);
      assert.ok(Number(res!.headers.get('retry-after')) > 0);
      assert.deepEqual(((await res!.json()) as { ok: boolean }).ok, false);
    });

    it('counts requests per token: another token from the same address goes on; requests without a valid token count against the address', async () => {
      const user = (token: string) => fetch(base + '/v1/user', { headers: { authorization: 'Bearer ' + token } });
      assert.equal((await user(f.tokens.alice)).status, 429, "alice's token is past its limit (the test above)");
      const bob = await user(f.tokens.bob);
      assert.equal(bob.status, 200, "bob's token has a count of its own");
      await bob.arrayBuffer();
      // Made-up tokens (a new one each time, so no per-token count could stop them), then no token at all: the address's count.
      const statuses: number[] = [];
      for (let i = 0; i < 60 && !statuses.includes(429); i++) {
        const res = i % 2 ? await fetch(base + '/v1/user') : await user('made-up-' + i);
        statuses.push(res.status);
        await res.arrayBuffer();
      }
      assert.equal(statuses.at(-1), 429, 'the address reached its limit: ' + statuses.join(' '));
      assert.ok(statuses.slice(0, -1).every((st) => st === 401));
      assert.equal((await user(f.tokens.carol)).status, 200, 'a valid token is not held back by its address');
    });
  });

  describe('the audit log under requests with no valid credentials', () => {
    let f: Fixture;
    before(async () => {
      f = await startFixture({ httpPort: 0, rateLimits: { ...defaultRateLimits, token: { limit: 3, windowMs: 60000 }, unauthenticatedAudits: { limit: 5, windowMs: 60000 } } });
    });
    after(() => f.close());

    it('audits their refusals up to a budget per address, then answers them unaudited; a row keeps 200 characters of an id from the URL', async () => {
      const base = 'http://127.0.0.1:' + f.bridge.ports.http;
      const long = 'a'.repeat(15000);
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push((await fetch(base + '/v1/products/' + long + i + '/devices', i % 2 ? { headers: { authorization: 'Bearer made-up-' + i } } : {})).status);
      assert.deepEqual(statuses, Array(8).fill(401), 'every one refused');
      const rows = (await f.bridge.store.auditLog({})).filter((e) => e.actorKind === 'anonymous' || e.actorKind === 'invalid');
      assert.equal(rows.length, 5, 'the budget');
      for (const e of rows) assert.equal(e.resourceId.length, 200, 'clipped');
      // A signed-in refusal is audited whatever the budget (this test's one, not the next's).
      assert.equal((await fetch(base + '/v1/products/prod-b/devices', { headers: { authorization: 'Bearer ' + f.tokens.carol } })).status, 404);
      assert.ok((await f.bridge.store.auditLog({})).some((e) => e.actorKind === 'user' && e.resourceId === 'prod-b' && !e.allowed));
    });

    it("counts a user's password in Basic auth (a scrypt, on the pool that checks devices' secrets) as the token endpoint's requests (here 3 a minute)", async () => {
      const base = 'http://127.0.0.1:' + f.bridge.ports.http;
      const basic = { authorization: 'Basic ' + Buffer.from('alice:alice-password').toString('base64') };
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await fetch(base + '/v1/access_tokens', { headers: basic })).status);
      assert.deepEqual(statuses, [200, 200, 200, 429]);
    });

    it("counts a customer's sign-up (a scrypt too, and the app's client credentials are in every copy of the app) as the token endpoint's requests", async () => {
      const base = 'http://127.0.0.1:' + f.bridge.ports.http;
      // This address spent its 3 in the test above, within the minute.
      const r = await fetch(base + '/v1/products/prod-a/customers', { method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.alice, 'content-type': 'application/json' }, body: JSON.stringify({ email: 'limited@example.com', password: 'limited-password' }) });
      assert.equal(r.status, 429);
      assert.equal(await f.bridge.store.findCustomer(f.products.A, 'limited@example.com'), null, 'nothing made');
    });
  });
});
