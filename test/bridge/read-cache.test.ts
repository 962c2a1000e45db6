/**
 * The store's kept answers (store/sqlite/read-cache.ts) on a real SQLite
 * file: a kept answer is never served after a write that could change it.
 * First the mechanism on its own (a write to the table, a write to another
 * table, a DELETE's cascade, exec, a transaction rolled back, another
 * connection's commit), then the reads every API request makes, through the
 * store's own methods: a revoked token, a deleted user's token, a team
 * change, a device deleted or claimed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';
import { trackWrites, type TrackedDatabase } from '../../bridge/src/store/sqlite/read-cache.js';
import type { SqliteDatabase } from '../../bridge/src/store/sqlite/connection.js';
import { openSqliteStore, sqliteFile, type SqliteStore } from '../../bridge/src/store/sqlite/index.js';
import { FAST } from '../helpers/store.js';

const require = createRequire(import.meta.url);
const Database = require('better-sqlite3') as new (file: string) => SqliteDatabase;

describe('read cache: kept answers end with any write that could change them', function () {
  this.timeout(20000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'flotilla-read-cache-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('the mechanism (trackWrites on a bare connection)', () => {
    let raw: SqliteDatabase;
    let t: TrackedDatabase;
    let file: string;
    let n = 0;
    beforeEach(() => {
      file = join(dir, 'bare-' + n++ + '.db');
      raw = new Database(file);
      raw.pragma('journal_mode = WAL');
      raw.pragma('foreign_keys = ON');
      raw.exec(`CREATE TABLE owners (id TEXT PRIMARY KEY, name TEXT);
                CREATE TABLE pets (id TEXT PRIMARY KEY, owner TEXT REFERENCES owners(id) ON DELETE CASCADE, name TEXT);
                CREATE TABLE other (x INTEGER);
                INSERT INTO owners VALUES ('o1', 'Ann'); INSERT INTO pets VALUES ('p1', 'o1', 'Rex');`);
      t = trackWrites(raw);
    });
    afterEach(() => raw.close());

    const petOf = () => t.cached<{ name: string; owner: string }>('SELECT p.name AS name, o.name AS owner FROM pets p JOIN owners o ON o.id = p.owner WHERE p.id = ?');

    it('keeps an answer: the same frozen row until something is written', () => {
      const q = petOf();
      const a = q.get('p1');
      assert.deepEqual(a, { name: 'Rex', owner: 'Ann' });
      assert.equal(q.get('p1'), a, 'the kept row, not a new read');
      assert.ok(Object.isFrozen(a));
      assert.equal(Reflect.set(a as object, 'name', 'x'), false);
      assert.ok(Object.isFrozen(q.all('p1')));
      assert.equal(q.get('nope'), undefined);
    });

    it('an INSERT or UPDATE of a table it reads ends it (either table of a join); one of another table does not', () => {
      const q = petOf();
      const first = q.get('p1');
      t.db.prepare('INSERT INTO other VALUES (?)').run(1);
      assert.equal(q.get('p1'), first, 'a write elsewhere keeps it');
      t.db.prepare('UPDATE owners SET name = ? WHERE id = ?').run('Bea', 'o1');
      assert.equal(q.get('p1')?.owner, 'Bea');
      t.db.prepare('UPDATE pets SET name = ? WHERE id = ?').run('Max', 'p1');
      assert.equal(q.get('p1')?.name, 'Max');
      t.db.prepare('INSERT INTO pets VALUES (?, ?, ?)').run('p2', 'o1', 'Tom');
      assert.equal(q.get('p2')?.name, 'Tom', 'a row that was missing is found once inserted');
    });

    it('a DELETE ends every kept answer: foreign keys cascade into tables it does not name', () => {
      const q = petOf();
      assert.ok(q.get('p1'));
      // Deleting the owner deletes the pet through ON DELETE CASCADE; the statement names only owners.
      t.db.prepare('DELETE FROM owners WHERE id = ?').run('o1');
      assert.equal(q.get('p1'), undefined);
      const other = t.cached<{ x: number }>('SELECT x FROM other WHERE x = ?');
      t.db.prepare('INSERT INTO other VALUES (?)').run(5);
      assert.deepEqual(other.get(5), { x: 5 });
      t.db.prepare('DELETE FROM pets WHERE id = ?').run('none');
      t.db.prepare('UPDATE other SET x = 6').run();
      assert.equal(other.get(5), undefined);
    });

    it('exec and writes it cannot name (REPLACE, a write returning rows) end every kept answer', () => {
      const q = petOf();
      assert.equal(q.get('p1')?.name, 'Rex');
      t.db.exec("UPDATE pets SET name = 'Exec' WHERE id = 'p1'");
      assert.equal(q.get('p1')?.name, 'Exec');
      t.db.prepare("REPLACE INTO pets VALUES ('p1', 'o1', 'Replaced')").run();
      assert.equal(q.get('p1')?.name, 'Replaced');
      const renamed = t.db.prepare<{ name: string }>("UPDATE pets SET name = 'Returned' WHERE id = 'p1' RETURNING name").get();
      assert.equal(renamed?.name, 'Returned');
      assert.equal(q.get('p1')?.name, 'Returned');
    });

    it('nothing read inside a transaction is kept: a rollback leaves no answer behind', () => {
      const q = petOf();
      assert.equal(q.get('p1')?.name, 'Rex');
      const rename = t.db.prepare('UPDATE pets SET name = ? WHERE id = ?');
      const attempt = t.db.transaction(() => {
        rename.run('Ghost', 'p1');
        assert.equal(q.get('p1')?.name, 'Ghost', 'the transaction sees its own write');
        throw new Error('roll back');
      });
      assert.throws(() => attempt(), /roll back/);
      assert.equal(q.get('p1')?.name, 'Rex', 'the rolled-back name is not served');
    });

    it("another connection's commit is seen from the next turn of the event loop", async () => {
      const q = petOf();
      assert.equal(q.get('p1')?.name, 'Rex');
      const other = new Database(file);
      try {
        other.prepare('UPDATE pets SET name = ? WHERE id = ?').run('Elsewhere', 'p1');
      } finally {
        other.close();
      }
      await turn();
      assert.equal(q.get('p1')?.name, 'Elsewhere');
    });

    it('parameters are keyed with their type, and a cached read must be a SELECT from named tables', () => {
      raw.exec("INSERT INTO other VALUES (1); CREATE TABLE texts (v TEXT); INSERT INTO texts VALUES ('1')");
      const q = t.cached<{ v: string }>('SELECT v FROM texts WHERE v = ?');
      assert.deepEqual(q.get('1'), { v: '1' });
      // SQLite answers the number 1 and the text '1' differently here: the kept answer of one is not the other's.
      const fresh = raw.prepare('SELECT v FROM texts WHERE v = ?');
      assert.deepEqual(q.all(1), fresh.all(1));
      assert.notDeepEqual(fresh.all(1), fresh.all('1'));
      assert.throws(() => t.cached('PRAGMA data_version'), /SELECT from named tables/);
      assert.throws(() => t.cached('SELECT 1'), /SELECT from named tables/);
    });
  });

  describe("the store's hot reads", () => {
    let store: SqliteStore;
    let userId: string;
    let productId: number;
    const DEV = '0123456789abcdef01234567';
    before(async () => {
      store = await openSqliteStore({ file: sqliteFile(dir), passwordCost: FAST, deviceSecretCost: FAST });
      userId = (await store.createUser('owner@example.com', 'password-1')).id;
      productId = (await store.createProduct({ name: 'P', slug: 'p', ownerUserId: userId })).id;
      await store.createDevice({ id: DEV, productId });
    });
    after(() => store.close());

    const token = () => store.issueToken({ subject: { kind: 'user', id: userId }, clientId: 'test', scopes: [], ttlSeconds: 3600 });

    it('a revoked token is found revoked at once, however often it was read before', async () => {
      const t = await token();
      for (let i = 0; i < 3; i++) assert.equal((await store.findToken(t.token))?.revokedAt, null);
      assert.equal(await store.revokeToken(t.token), true);
      assert.ok((await store.findToken(t.token))?.revokedAt instanceof Date);
    });

    it("a deleted API user's token is gone (the row went by cascade)", async () => {
      const api = await store.createApiUser({ username: 'robot', scopes: ['device.view'], productId });
      const t = await store.issueToken({ subject: { kind: 'apiUser', id: api.id }, clientId: 'test', scopes: [], ttlSeconds: 3600 });
      assert.ok(await store.findToken(t.token));
      assert.ok(await store.getApiUser(api.id));
      assert.equal(await store.deleteApiUser(api.id), true);
      const after = await store.findToken(t.token);
      assert.ok(after === null || after.revokedAt instanceof Date, 'the token must not stay live');
      assert.equal(await store.getApiUser(api.id), null);
    });

    it("a team change is in the user's roles at once", async () => {
      const member = (await store.createUser('member@example.com', 'password-2')).id;
      assert.deepEqual((await store.memberships(member)).products, {});
      await store.addProductMember(productId, member, 'viewer');
      assert.deepEqual((await store.memberships(member)).products, { [productId]: 'viewer' });
      await store.setProductMemberRole(productId, member, 'administrator');
      assert.deepEqual((await store.memberships(member)).products, { [productId]: 'administrator' });
      await store.removeProductMember(productId, member);
      assert.deepEqual((await store.memberships(member)).products, {});
    });

    it("a device's owner and product are current: claimed, unclaimed, deleted", async () => {
      const before = await store.deviceAccess(DEV);
      assert.equal(before?.customerId, null);
      assert.equal((await store.getDevice(DEV))?.name, null);
      await store.updateDevice(DEV, { name: 'kitchen' });
      assert.equal((await store.getDevice(DEV))?.name, 'kitchen');
      const customer = await store.createCustomer({ productId, username: 'c@example.com', password: 'password-3' });
      await store.claimDevice(DEV, customer.id);
      assert.equal((await store.deviceAccess(DEV))?.customerId, customer.id);
      await store.unclaimDevice(DEV);
      assert.equal((await store.deviceAccess(DEV))?.customerId, null);
      assert.equal(await store.deleteDevice(DEV), true);
      assert.equal(await store.deviceAccess(DEV), null);
      assert.equal(await store.getDevice(DEV), null);
    });

    it('presence written by the group commit is read by getDevice (it flushes first)', async () => {
      const id = 'fedcba9876543210fedcba98';
      await store.createDevice({ id, productId });
      assert.equal((await store.getDevice(id))?.online, false);
      const written = store.setOnline(id, true, new Date());
      assert.equal((await store.getDevice(id))?.online, true);
      await written;
    });
  });
});
