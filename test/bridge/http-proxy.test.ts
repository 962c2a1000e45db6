/** The client behind the operator's reverse proxy (bridge/src/http/proxy.ts), pure and on a bridge. */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { clientAddress, trustedProxies } from '../../bridge/src/http/proxy.js';
import { bridgeOptions, CliError } from '../../bridge/src/cli.js';
import { defaultRateLimits } from '../../bridge/src/http/ratelimit.js';
import { startFixture, type Fixture } from '../helpers/bridge-fixture.js';

describe('HTTP API behind a reverse proxy', () => {
  describe('the client address (pure)', () => {
    const trusted = trustedProxies(['127.0.0.1', '10.0.0.0/8', 'fd00::/8']);
    const cases: [string, string, string | undefined, string][] = [
      ['no header: the peer', '127.0.0.1', undefined, '127.0.0.1'],
      ['from a trusted proxy: the right-most hop', '127.0.0.1', '203.0.113.7', '203.0.113.7'],
      ['a client forging hops on the left: the hop the proxy wrote', '127.0.0.1', '198.51.100.1, 203.0.113.7', '203.0.113.7'],
      ['through two trusted proxies: the first untrusted hop from the right', '127.0.0.1', '203.0.113.7, 10.1.2.3', '203.0.113.7'],
      ['from anyone else the header is ignored', '192.0.2.9', '203.0.113.7', '192.0.2.9'],
      ['an IPv4-mapped peer is its IPv4 address', '::ffff:10.0.0.5', '203.0.113.7', '203.0.113.7'],
      ['IPv6 ranges', 'fd00::1', '2001:db8::9', '2001:db8::9'],
      ['a hop that is no address: what the proxy knew', '127.0.0.1', 'junk', '127.0.0.1'],
      ['a hop with a port (some proxies add it)', '127.0.0.1', '203.0.113.7:51234', '203.0.113.7'],
      ['an IPv6 hop in brackets with a port', '127.0.0.1', '[2001:db8::9]:443', '2001:db8::9'],
      ['every hop a trusted proxy: the left-most', '127.0.0.1', '10.0.0.1, 10.0.0.2', '10.0.0.1'],
    ];
    for (const [what, peer, header, want] of cases) it(what, () => assert.equal(clientAddress(peer, header, trusted), want));
    it('trusts no one by default, and refuses what is no address or range', () => {
      assert.equal(clientAddress('127.0.0.1', '203.0.113.7', trustedProxies([])), '127.0.0.1');
      for (const bad of ['10.0.0.0/33', 'proxy.local', '10.0.0.1/8/1', '::1/129']) assert.throws(() => trustedProxies([bad]), new RegExp(`"${bad.replace(/[./]/g, '\\$&')}" is not an address or a range`));
    });
    it('--trust-proxy (FLOTILLA_TRUST_PROXY): comma-separated, checked at start', () => {
      assert.deepEqual(bridgeOptions({ 'trust-proxy': '127.0.0.1, 10.0.0.0/8' }, {}).http?.trustProxy, ['127.0.0.1', '10.0.0.0/8']);
      assert.throws(() => bridgeOptions({}, { FLOTILLA_TRUST_PROXY: 'proxy.local' }), (e) =>
        e instanceof CliError && e.message === '--trust-proxy (FLOTILLA_TRUST_PROXY): "proxy.local" is not an address or a range like 10.0.0.0/8');
    });
  });

  describe('on a bridge whose proxy is 127.0.0.1', () => {
    let f: Fixture;
    before(async () => {
      f = await startFixture({ httpPort: 0, http: { trustProxy: ['127.0.0.1'] }, rateLimits: { ...defaultRateLimits, tokenFailures: { limit: 3, lockMs: 60000 }, tokenFailuresPerAddress: { limit: 5, lockMs: 60000 } } });
    });
    after(() => f.close());

    const login = (from: string, password: string) =>
      new Promise<number>((resolve, reject) => {
        const body = new URLSearchParams({ grant_type: 'password', username: 'alice', password, client_id: 'particle', client_secret: 'particle' }).toString();
        const r = request({ host: '127.0.0.1', port: f.bridge.ports.http!, method: 'POST', path: '/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': from } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        r.on('error', reject);
        r.end(body);
      });

    it('locks out the client the proxy names, not every client behind it (one attacker locked every login out)', async () => {
      for (let i = 0; i < 6; i++) await login('198.51.100.66', 'wrong');
      assert.equal(await login('198.51.100.66', 'alice-password'), 429, 'the attacker is locked out');
      assert.equal(await login('203.0.113.7', 'alice-password'), 200, 'another client behind the same proxy is not');
    });
  });
});
