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

    it('locks out logins after failures within the lock time; older failures are forgotten, and the lock ends', () => {
      let now = 0;
      const l = new RateLimiter({ ...defaultRateLimits, tokenFailures: { limit: 3, lockMs: 60000 } }, () => now);
      l.loginFailed('a');
      l.loginFailed('a');
      now += 60000;
      l.loginFailed('a');
      assert.equal(l.tokenRequest('a'), null, 'the first two are a lock time old: this one starts afresh');
      now += 59999;
      l.loginFailed('a');
      assert.equal(l.tokenRequest('a'), null);
      l.loginFailed('a');
      assert.equal(l.tokenRequest('a'), 60, 'three within a minute');
      assert.equal(l.tokenRequest('b'), null, 'another address has its own count');
      now += 60000;
      assert.equal(l.tokenRequest('a'), null, 'the lock ends');
      l.loginFailed('a');
      l.loginFailed('a');
      assert.equal(l.tokenRequest('a'), null, 'and its count started afresh');
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
        rateLimits: { requests: { limit: 40, windowMs: 60000 }, token: { limit: 100, windowMs: 60000 }, tokenFailures: { limit: 3, lockMs: 60000 }, streams: { opens: 100, windowMs: 60000, concurrent: 2 } },
      });
      base = 'http://127.0.0.1:' + f.bridge.ports.http;
    });
    after(() => f.close());

    const login = (password: string) =>
      fetch(base + '/oauth/token', {
        method: 'POST', headers: { authorization: 'Basic ' + Buffer.from('particle:particle').toString('base64'), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'password', username: 'alice', password }),
      });

    it('locks an address out of /oauth/token after repeated wrong passwords, even for the right one; a good login in between clears nothing', async () => {
      for (let i = 0; i < 2; i++) assert.equal((await login('wrong')).status, 400);
      // Someone with one account logging in between guesses does not reset the address's count.
      assert.equal((await login('alice-password')).status, 200);
      assert.equal((await login('wrong')).status, 400);
      const locked = await login('alice-password');
      assert.equal(locked.status, 429);
      assert.ok(Number(locked.headers.get('retry-after')) > 0);
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
});
