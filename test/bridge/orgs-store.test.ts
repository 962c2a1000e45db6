/**
 * The SQLite store's organization and billing parts, on a real file: each
 * method's answers, and each refusal with its code (conflict, not_found,
 * invalid) leaving the data as it was.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, type SqliteStore } from '../../bridge/src/store/sqlite/index.js';
import { FAST, refused } from '../helpers/store.js';

const SIM = '89012608823100000009';


describe('store: organizations, transfers, whitelist, billing, meters', () => {
  let dir: string;
  let store: SqliteStore;
  const u: Record<string, string> = {};
  let orgId: string;
  let productId: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-orgs-store-'));
    store = await openSqliteStore({ file: join(dir, 'f.db'), passwordCost: FAST, deviceSecretCost: FAST });
    for (const n of ['owner', 'admin', 'dev', 'alice', 'carol', 'otto']) u[n] = (await store.createUser(n, 'pw')).id;
    orgId = (await store.createOrg('Acme', u.owner)).id;
    await store.addOrgMember(orgId, u.admin, 'administrator');
    await store.addOrgMember(orgId, u.dev, 'developer');
    await store.addOrgMember(orgId, u.alice, 'viewer');
    productId = (await store.createProduct({ name: 'A', slug: 'a', ownerUserId: u.alice })).id;
    await store.addProductMember(productId, u.carol, 'support');
    await store.addProductMember(productId, u.dev, 'viewer');
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('hands an org over to a member; refuses a stranger, the Owner, an unknown org', async () => {
    await refused(store.setOrgOwner(orgId, u.otto), 'conflict', /not on the team/);
    await refused(store.setOrgOwner(orgId, u.owner), 'conflict', /already the Owner/);
    await refused(store.setOrgOwner('nope', u.admin), 'not_found');
    assert.equal((await store.getOrg(orgId))!.ownerUserId, u.owner);
    const o = await store.setOrgOwner(orgId, u.admin);
    assert.equal(o.ownerUserId, u.admin);
    assert.deepEqual((await store.orgTeam(orgId)).find((m) => m.userId === u.owner), { userId: u.owner, role: 'administrator' });
    assert.equal((await store.orgTeam(orgId)).filter((m) => m.userId === u.admin).length, 1, 'the new Owner once, as Owner');
    await store.setOrgOwner(orgId, u.owner);
  });

  it('requests, refuses a second pending request, closes, and accepts a transfer', async () => {
    await refused(store.requestTransfer({ productId, orgId: 'nope', requestedBy: u.alice }), 'not_found');
    await refused(store.requestTransfer({ productId: 999, orgId, requestedBy: u.alice }), 'not_found');
    await refused(store.requestTransfer({ productId: 'x', orgId, requestedBy: u.alice }), 'invalid');
    const t = await store.requestTransfer({ productId, orgId, requestedBy: u.alice });
    assert.equal(t.state, 'pending');
    await refused(store.requestTransfer({ productId, orgId, requestedBy: u.alice }), 'conflict', /pending/);
    await refused(store.closeTransfer(t.id, 'accepted' as never, u.admin), 'invalid');
    assert.equal((await store.closeTransfer(t.id, 'declined', u.admin)).state, 'declined');
    await refused(store.closeTransfer(t.id, 'cancelled', u.alice), 'conflict');
    await refused(store.acceptTransfer(t.id, u.admin), 'conflict');
    await refused(store.acceptTransfer('nope', u.admin), 'not_found');
    await store.setBillingInfo({ productId }, { name: 'Alice' }, u.alice);
    // The Owner left the org before anyone consented: refused, nothing moves.
    const t2 = await store.requestTransfer({ productId, orgId, requestedBy: u.alice });
    await store.removeOrgMember(orgId, u.alice);
    await refused(store.acceptTransfer(t2.id, u.admin), 'conflict', /no longer on the team/);
    assert.equal((await store.getProduct(productId))!.ownerUserId, u.alice);
    await store.addOrgMember(orgId, u.alice, 'viewer');
    const out = await store.acceptTransfer(t2.id, u.admin);
    assert.deepEqual([out.transfer.state, out.transfer.decidedBy, out.formerOwnerUserId], ['accepted', u.admin, u.alice]);
    assert.deepEqual(out.kept, [{ userId: u.carol, role: 'support' }]);
    assert.deepEqual(out.superseded, [{ userId: u.dev, role: 'viewer' }]);
    const p = (await store.getProduct(productId))!;
    assert.deepEqual([p.ownerUserId, p.orgId], [null, orgId]);
    assert.deepEqual(await store.productTeam(productId), [{ userId: u.carol, role: 'support' }]);
    assert.equal(await store.billingInfo({ productId }), null, 'the org\'s account applies now');
    assert.deepEqual((await store.listTransfers({ orgId })).map((x) => x.state).sort(), ['accepted', 'declined']);
    await refused(store.requestTransfer({ productId, orgId, requestedBy: u.owner }), 'conflict', /already belongs/);
  });

  it('whitelists team members once, and forgets them when they leave the team', async () => {
    // Refusals name people by username, not by id (before: "c1f7b97b… is not on the team of org fd0a2b…").
    await refused(store.addBilledUser(orgId, u.otto, u.owner), 'conflict', /^otto is not on the team of org [a-z0-9-]+$/);
    await refused(store.addBilledUser('nope', u.dev, u.owner), 'not_found');
    await store.addBilledUser(orgId, u.dev, u.owner);
    await store.addBilledUser(orgId, u.owner, u.owner);
    await refused(store.addBilledUser(orgId, u.dev, u.owner), 'conflict', /^dev is already billed to this org$/);
    assert.deepEqual((await store.billedUsers(orgId)).map((b) => b.userId).sort(), [u.dev, u.owner].sort());
    assert.equal(await store.billingOrgOf(u.dev), orgId);
    await store.removeOrgMember(orgId, u.dev);
    assert.equal(await store.billingOrgOf(u.dev), null);
    assert.equal(await store.removeBilledUser(orgId, u.owner), true);
    assert.equal(await store.removeBilledUser(orgId, u.owner), false);
  });

  it('keeps billing information, refusing malformed fields and unknown owners', async () => {
    await refused(store.setBillingInfo({ orgId }, { email: 'x' }, u.owner), 'invalid', /e-mail/);
    await refused(store.setBillingInfo({ orgId }, { country: 'FRA' }, u.owner), 'invalid', /two-letter/);
    await refused(store.setBillingInfo({ orgId }, { address: 'x'.repeat(1001) }, u.owner), 'invalid', /longer than 1000/);
    await refused(store.setBillingInfo({ orgId }, { name: 3 as never }, u.owner), 'invalid', /text/);
    await refused(store.setBillingInfo({ orgId: 'nope' }, { name: 'x' }, u.owner), 'not_found');
    await refused(store.setBillingInfo({ productId: 999 }, { name: 'x' }, u.owner), 'not_found');
    assert.equal(await store.billingInfo({ orgId }), null);
    const i = await store.setBillingInfo({ orgId }, { name: ' Acme ', country: 'de', email: 'b@acme.example' }, u.owner);
    assert.deepEqual([i.name, i.country, i.email, i.updatedBy], ['Acme', 'DE', 'b@acme.example', u.owner]);
    const j = await store.setBillingInfo({ orgId }, { email: null, taxId: '' }, u.owner);
    assert.deepEqual([j.name, j.email, j.taxId], ['Acme', null, null]);
  });

  it('adds data operations to the day, and SIM data replaces the day\'s figure; sums over products', async () => {
    const other = (await store.createProduct({ name: 'B', slug: 'b', ownerUserId: u.otto })).id;
    await store.recordUsage([
      { productId, day: '2025-03-01', messages: 3, bytes: 30, devices: ['d1'], dataOps: 2 },
      { productId, day: '2025-03-01', messages: 0, bytes: 0, devices: [], dataOps: 5 },
      { productId: other, day: '2025-03-01', messages: 1, bytes: 10, devices: ['d2'] },
      { productId: other, day: '2025-03-02', messages: 0, bytes: 0, devices: [], dataOps: 1 },
    ]);
    await store.addSims(productId, [SIM]);
    await refused(store.recordSimData(SIM, '2025-3-1', 5), 'invalid');
    await refused(store.recordSimData(SIM, '2025-03-01', -1), 'invalid');
    await refused(store.recordSimData(SIM, '2025-03-01', 0.5), 'invalid');
    await refused(store.recordSimData('89014103211118510720', '2025-03-01', 5), 'not_found');
    await store.recordSimData(SIM, '2025-03-01', 100);
    await store.recordSimData(SIM, '2025-03-01', 700);
    await store.recordSimData(SIM, '2025-03-03', 50);
    assert.deepEqual(await store.simDataUsage(SIM, '2025-03-01', '2025-03-31'), [{ day: '2025-03-01', bytes: 700 }, { day: '2025-03-03', bytes: 50 }]);
    assert.deepEqual(await store.usage(productId, '2025-03-01', '2025-03-31'), [
      { day: '2025-03-01', devices: 1, messages: 3, bytes: 30, dataOps: 7, simBytes: 700 },
      { day: '2025-03-03', devices: 0, messages: 0, bytes: 0, dataOps: 0, simBytes: 50 },
    ]);
    assert.deepEqual(await store.usageOfProducts([productId, other, productId], '2025-03-01', '2025-03-02'), [
      { day: '2025-03-01', devices: 2, messages: 4, bytes: 40, dataOps: 7, simBytes: 700 },
      { day: '2025-03-02', devices: 0, messages: 0, bytes: 0, dataOps: 1, simBytes: 0 },
    ]);
    assert.deepEqual(await store.usageOfProducts([], '2025-03-01', '2025-03-02'), []);
    await refused(store.usageOfProducts([productId], '2025-03', '2025-04'), 'invalid');
    await refused(store.usageOfProducts(['x'], '2025-03-01', '2025-03-02'), 'invalid');
    // A removed SIM's data stays with the product it was billed to.
    await store.removeSim(SIM);
    assert.equal((await store.usage(productId, '2025-03-01', '2025-03-01'))[0].simBytes, 700);
  });
});
