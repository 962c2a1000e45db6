/**
 * Admission of MQTT connections (bridge/src/mqtt/admission.ts): a cap on
 * connections in all, and on connections from one address not yet past
 * CONNECT; the address an IPv6 host counts by (its /64); the default cap
 * read from the open-file limit.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Admission, connectionsFromFileLimit, type Ticket } from '../../bridge/src/mqtt/admission.js';
import { addressKey } from '../../bridge/src/identity/address.js';

const ticket = (t: Ticket | string): Ticket => {
  assert.equal(typeof t, 'object', 'admitted');
  return t as Ticket;
};

describe('MQTT admission', () => {
  it('takes at most maxPendingPerAddress from one address until their CONNECT is accepted; others go on', () => {
    const a = new Admission({ maxConnections: null, maxPendingPerAddress: 2 });
    const one = ticket(a.admit('10.0.0.1'));
    const two = ticket(a.admit('10.0.0.1'));
    assert.equal(a.admit('10.0.0.1'), 'address');
    ticket(a.admit('10.0.0.2'));
    // Accepted (a device behind a NAT, online): no longer counted against the address, still open.
    one.accepted();
    one.accepted();
    const three = ticket(a.admit('10.0.0.1'));
    assert.equal(a.admit('10.0.0.1'), 'address');
    // A pending one that closes frees its place; releasing twice changes nothing.
    two.release();
    two.release();
    ticket(a.admit('10.0.0.1'));
    assert.equal(a.admit('10.0.0.1'), 'address');
    assert.equal(a.size, 4);
    three.release();
    one.release();
    assert.equal(a.size, 2);
  });

  it('takes at most maxConnections in all, accepted or not', () => {
    const a = new Admission({ maxConnections: 3, maxPendingPerAddress: 10 });
    const t = [ticket(a.admit('10.0.0.1')), ticket(a.admit('10.0.0.2')), ticket(a.admit('10.0.0.3'))];
    t[0].accepted();
    assert.equal(a.admit('10.0.0.4'), 'full');
    t[0].release();
    ticket(a.admit('10.0.0.4'));
    assert.equal(a.admit('10.0.0.5'), 'full');
  });

  it('counts an IPv6 host by its /64, and an IPv4 address mapped into IPv6 as the IPv4 address', () => {
    const cases: [string, string][] = [
      ['192.0.2.7', '192.0.2.7'],
      ['::ffff:192.0.2.7', '192.0.2.7'],
      ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
      ['2001:db8:1:2::9', '2001:db8:1:2::/64'],
      ['2001:0db8:0001:0002:ffff::1', '2001:db8:1:2::/64'],
      ['2001:db8::1', '2001:db8:0:0::/64'],
      ['::1', '0:0:0:0::/64'],
      ['', ''],
    ];
    for (const [address, key] of cases) assert.equal(addressKey(address), key, address);
    const a = new Admission({ maxConnections: null, maxPendingPerAddress: 1 });
    ticket(a.admit('2001:db8:1:2::1'));
    assert.equal(a.admit('2001:db8:1:2::ffff'), 'address', 'another address of the same /64');
    ticket(a.admit('2001:db8:1:3::1'));
  });

  it('defaults maxConnections to the open-file limit less a reserve; null when there is none to read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-limits-'));
    try {
      const file = join(dir, 'limits');
      const limits = (n: string) => `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${n}                 1048576              files\n`;
      writeFileSync(file, limits('20000'));
      assert.equal(connectionsFromFileLimit(1024, file), 18000, 'a tenth kept back');
      writeFileSync(file, limits('4096'));
      assert.equal(connectionsFromFileLimit(1024, file), 3072);
      writeFileSync(file, limits('1024'));
      assert.equal(connectionsFromFileLimit(1024, file), 768, 'a quarter of a small limit, not all of it');
      writeFileSync(file, limits('unlimited'));
      assert.equal(connectionsFromFileLimit(1024, file), null);
      assert.equal(connectionsFromFileLimit(1024, join(dir, 'none')), null);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
