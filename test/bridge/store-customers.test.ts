/** Customers, their claims, and API users in the SQLite store (a real file in a temp dir). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, type SqliteStore } from '../../bridge/src/store/sqlite/index.js';

describe('store: customers and API users', () => {
  let dir: string;
  let s: SqliteStore;
  let A: number;
  let B: number;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-cust-'));
    s = await openSqliteStore({ file: join(dir, 'flotilla.db'), passwordCost: { N: 1024, r: 8, p: 1 } });
    const u = await s.createUser('alice', 'pw');
    A = (await s.createProduct({ name: 'A', slug: 'a', ownerUserId: u.id })).id;
    B = (await s.createProduct({ name: 'B', slug: 'b', ownerUserId: u.id })).id;
    await s.createDevice({ id: 'a1a1a1a1a1a1a1a1a1a1a1a1', productId: A });
    await s.createDevice({ id: 'b1b1b1b1b1b1b1b1b1b1b1b1', productId: B });
  });
  afterEach(async () => {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates customers with and without a password, one username per product', async () => {
    const c = await s.createCustomer({ productId: A, username: 'Jo@Example.com', password: 'pw' });
    assert.deepEqual([c.username, c.productId, c.hasPassword], ['jo@example.com', A, true]);
    const shadow = await s.createCustomer({ productId: A, username: 'shadow@example.com', password: null });
    assert.equal(shadow.hasPassword, false);
    await assert.rejects(s.createCustomer({ productId: A, username: 'jo@example.com', password: 'x' }), /exists/);
    assert.ok(await s.createCustomer({ productId: B, username: 'jo@example.com', password: 'x' }), 'the same name in another product');
    await assert.rejects(s.createCustomer({ productId: 999, username: 'x', password: 'x' }), /no product/);
  });

  it('lets a customer claim a device of their own product only, and unclaim it', async () => {
    const c = await s.createCustomer({ productId: A, username: 'jo', password: null });
    await s.claimDevice('a1a1a1a1a1a1a1a1a1a1a1a1', c.id);
    assert.deepEqual((await s.deviceAccess('a1a1a1a1a1a1a1a1a1a1a1a1'))?.customerId, c.id);
    await assert.rejects(s.claimDevice('b1b1b1b1b1b1b1b1b1b1b1b1', c.id), /no device b1b1b1b1b1b1b1b1b1b1b1b1 in the customer's product/);
    await assert.rejects(s.claimDevice('a1a1a1a1a1a1a1a1a1a1a1a1', 'nobody'), /no customer/);
    assert.equal(await s.unclaimDevice('a1a1a1a1a1a1a1a1a1a1a1a1'), true);
    assert.equal(await s.unclaimDevice('a1a1a1a1a1a1a1a1a1a1a1a1'), false);
    assert.equal((await s.deviceAccess('a1a1a1a1a1a1a1a1a1a1a1a1'))?.customerId, null);
  });

  it('creates API users for one org or one product, never both or neither', async () => {
    const u = await s.createApiUser({ username: 'dash', productId: A, scopes: ['device.events'] });
    assert.deepEqual([u.productId, u.orgId, u.scopes], [A, null, ['device.events']]);
    assert.deepEqual(await s.getApiUser(u.id), u);
    const owner = await s.createUser('bob', 'pw');
    const org = await s.createOrg('Acme', owner.id);
    assert.equal((await s.createApiUser({ username: 'ci', orgId: org.id, scopes: [] })).orgId, org.id);
    await assert.rejects(s.createApiUser({ username: 'x', productId: A, orgId: org.id, scopes: [] } as never), /one org or one product/);
    await assert.rejects(s.createApiUser({ username: 'x', scopes: [] } as never), /one org or one product/);
    await assert.rejects(s.createApiUser({ username: 'x', productId: A, scopes: [1] as never }), /scopes/);
    await assert.rejects(s.createApiUser({ username: 'x', orgId: 'nope', scopes: [] }), /no org/);
  });
});
