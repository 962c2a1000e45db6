/**
 * The SQLite store against a real database file in a temp directory: the
 * pragmas the connection runs with, the migration (applied once, matching the
 * entities), every method's answers and refusals, secrets kept only as
 * hashes (checked in the file's bytes), and writes from two connections and
 * from another process on the same file.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataSource } from 'typeorm';
import type { ErrorReport } from '@flotilla/protocol';
import { openSqliteStore, sqliteFile } from '../../bridge/src/store/sqlite/index.js';
import type { SqliteStore, SqliteStoreOptions } from '../../bridge/src/store/sqlite/index.js';
import { ENTITIES, MIGRATIONS } from '../../bridge/src/store/schema/index.js';
import { FAST, refused } from '../helpers/store.js';
import { cutoffs, startRetention } from '../../bridge/src/telemetry/retention.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');
const require = createRequire(import.meta.url);

/** The few better-sqlite3 calls the test makes on its own connections (the package has no types here). */
interface RawDb {
  prepare(sql: string): { get(...p: unknown[]): unknown; all(...p: unknown[]): unknown[]; run(...p: unknown[]): unknown };
  pragma(s: string, o?: { simple?: boolean }): unknown;
  close(): void;
}
const Database = require('better-sqlite3') as new (file: string, opts?: { readonly?: boolean }) => RawDb;

const T0 = Date.UTC(2025, 0, 1);


function raw(file: string, readonly = true): RawDb {
  return new Database(file, { readonly });
}

/** Every byte of the database: the main file and its WAL (recent commits live there until a checkpoint). */
function databaseBytes(file: string): Buffer {
  const dir = dirname(file);
  const base = file.slice(dir.length + 1);
  return Buffer.concat(readdirSync(dir).filter((n) => n.startsWith(base)).map((n) => readFileSync(join(dir, n))));
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const DEV1 = '0123456789abcdef01234567';
const DEV2 = 'fedcba9876543210fedcba98';
const DEV3 = 'aaaaaaaaaaaaaaaaaaaaaaaa';

function errorReport(over: Partial<ErrorReport> = {}): ErrorReport {
  return { source: 'function', name: 'led', message: 'TypeError: x is undefined', stack: 'at led', count: 1, uptime: 10, ...over };
}

describe('store (SQLite file, typeorm migrations)', function () {
  this.timeout(30000);
  let dir: string;
  let file: string;
  let clock = T0;
  let store: SqliteStore;
  const open = (o: Partial<SqliteStoreOptions> = {}) =>
    openSqliteStore({ file, now: () => clock, passwordCost: FAST, deviceSecretCost: FAST, ...o });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-store-'));
    file = sqliteFile(dir);
    store = await open();
  });

  after(async () => {
    if (store) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('opening', () => {
    it('runs with WAL, synchronous=FULL, foreign keys on and a busy timeout', async () => {
      assert.deepEqual(await store.pragmas(), { journalMode: 'wal', synchronous: 2, foreignKeys: 1, busyTimeoutMs: 5000 });
      // WAL is a property of the file: another connection sees it too.
      const db = raw(file);
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      db.close();
    });

    it('makes a new database file, and its WAL, readable by its owner only', async () => {
      for (const f of [file, file + '-wal', file + '-shm']) assert.equal(statSync(f).mode & 0o777, 0o600, f);
    });

    it('takes the busy timeout it is given', async () => {
      const other = await open({ busyTimeoutMs: 1234 });
      assert.equal((await other.pragmas()).busyTimeoutMs, 1234);
      await other.close();
    });

    it('applies each migration once: reopening keeps the data and records each migration once', async () => {
      const u = await store.createUser('reopen@example.com', 'pw-reopen');
      await store.close();
      store = await open();
      assert.deepEqual(await store.getUser(u.id), u);
      const db = raw(file);
      assert.deepEqual(db.prepare('SELECT name FROM migrations ORDER BY id').all(), MIGRATIONS.map((M) => ({ name: new M().name })));
      db.close();
    });

    it('has every table of the schema', () => {
      const db = raw(file);
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
      db.close();
      for (const t of [
        'users', 'access_tokens', 'oauth_clients', 'organizations', 'org_memberships', 'products', 'product_memberships',
        'invitations', 'devices', 'device_credentials', 'device_groups', 'device_group_members', 'sim_cards',
        'firmware_versions', 'customers', 'integrations', 'api_users', 'vitals_latest', 'vitals_history', 'error_reports', 'audit_log',
        'usage_daily', 'device_days', 'group_releases', 'rollouts', 'ota_jobs',
      ])
        assert.ok(tables.includes(t), 'missing table ' + t);
    });

    it('the entities describe exactly what the migrations create, and down() removes it all', async () => {
      const ds = new DataSource({ type: 'better-sqlite3', database: ':memory:', entities: ENTITIES, migrations: MIGRATIONS, migrationsRun: true });
      await ds.initialize();
      try {
        const diff = await ds.driver.createSchemaBuilder().log();
        assert.deepEqual(diff.upQueries.map((q) => q.query), [], 'entities and migrations disagree: add a migration');
        for (let i = 0; i < MIGRATIONS.length; i++) await ds.undoLastMigration();
        const left = (await ds.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")) as { name: string }[];
        assert.deepEqual(left.map((r) => r.name), ['migrations']);
      } finally {
        await ds.destroy();
      }
    });
    /**
     * A file migrated up to just before migration `name`, holding user u1 and its product 7, and
     * how to reopen it with every migration run.
     */
    async function fileBefore(name: string): Promise<{ ds: DataSource; file: string; upgrade: () => Promise<DataSource> }> {
      const upTo = MIGRATIONS.findIndex((M) => new M().name.startsWith(name));
      assert.ok(upTo > 0);
      const file = join(dir, 'before-' + name + '.sqlite');
      const at = (migrations: typeof MIGRATIONS) => new DataSource({ type: 'better-sqlite3', database: file, migrations, migrationsRun: true });
      const ds = await at(MIGRATIONS.slice(0, upTo)).initialize();
      await ds.query("INSERT INTO users (id, username, password_hash, created_at) VALUES ('u1', 'old@example.com', 'x', 1)");
      await ds.query("INSERT INTO products (id, name, slug, owner_user_id, org_id, settings, created_at) VALUES (7, 'Old', 'old', 'u1', NULL, '{}', 1)");
      return { ds, file, upgrade: () => at(MIGRATIONS).initialize() };
    }

    it('upgrading a file made before integrations had user and org owners keeps its product integrations', async () => {
      const before = await fileBefore('IntegrationOwners');
      await before.ds.query("INSERT INTO integrations (id, product_id, event_prefix, url, template, enabled, failures, created_at) VALUES ('i1', 7, 'temp', 'http://example.com/', NULL, 1, 2, 5)");
      await before.ds.destroy();
      const ds = await before.upgrade();
      try {
        assert.deepEqual(await ds.query('SELECT id, product_id, user_id, org_id, event_prefix, failures FROM integrations'), [
          { id: 'i1', product_id: 7, user_id: null, org_id: null, event_prefix: 'temp', failures: 2 },
        ]);
        // The check holds from now on: no owner, or two, is refused.
        await assert.rejects(ds.query("INSERT INTO integrations (id, product_id, user_id, event_prefix, url, enabled, failures, created_at) VALUES ('i2', 7, 'u1', 't', 'http://x/', 1, 0, 1)"), /CHECK/);
        await assert.rejects(ds.query("INSERT INTO integrations (id, event_prefix, url, enabled, failures, created_at) VALUES ('i3', 't', 'http://x/', 1, 0, 1)"), /CHECK/);
      } finally {
        await ds.destroy();
      }
    });

    it('upgrading a file made before webhooks had default data keeps what each webhook sends', async () => {
      const before = await fileBefore('WebhookDefaults');
      const insert = (id: string, template: object | null) =>
        before.ds.query('INSERT INTO integrations (id, product_id, event_prefix, url, template, enabled, failures, created_at) VALUES (?, 7, ?, ?, ?, 1, 0, 1)', [id, 't', 'http://example.com/', template && JSON.stringify(template)]);
      await insert('bare', null);
      await insert('get', { requestType: 'GET' });
      await insert('json', { json: { t: '{{{PARTICLE_EVENT_VALUE}}}' } });
      await insert('form', { form: { t: '{{{PARTICLE_EVENT_VALUE}}}' } });
      await before.ds.destroy();
      await (await before.upgrade()).destroy();
      const store = await openSqliteStore({ file: before.file, passwordCost: FAST, deviceSecretCost: FAST });
      try {
        const { requestFor } = await import('../../bridge/src/integrations/request.js');
        const vars = { PARTICLE_EVENT_NAME: 't', PARTICLE_EVENT_VALUE: '21', PARTICLE_DEVICE_ID: DEV1, PARTICLE_PUBLISHED_AT: 'at', PRODUCT_ID: '7', PRODUCT_VERSION: '3', PRODUCT_USER_ID: '' };
        const sent = async (id: string) => {
          const r = requestFor((await store.getIntegration(id))!, vars);
          return [r.url, r.headers['content-type'] ?? null, r.body ?? null];
        };
        // What the bridge sent for each before default data came: the same.
        assert.deepEqual(await sent('bare'), ['http://example.com/', 'application/json', JSON.stringify({ event: 't', data: '21', published_at: 'at', coreid: DEV1 })]);
        // (A GET had no body then either; it no longer names a content type for the body it does not have.)
        assert.deepEqual(await sent('get'), ['http://example.com/', null, null]);
        assert.deepEqual(await sent('json'), ['http://example.com/', 'application/json', '{"t":"21"}']);
        assert.deepEqual(await sent('form'), ['http://example.com/', 'application/x-www-form-urlencoded', 't=21']);
        // A webhook made now has Particle's default data.
        const made = await store.createIntegration({ productId: 7 }, { event: 't', url: 'http://example.com/' });
        assert.equal(made.noDefaults, false);
        assert.deepEqual(await sent(made.id), ['http://example.com/', 'application/x-www-form-urlencoded', 'event=t&data=21&published_at=at&coreid=' + DEV1]);
      } finally {
        await store.close();
      }
    });

    it('upgrading a file made before user claim codes could name no product keeps its codes; from then on only a customer\'s must name one', async () => {
      const before = await fileBefore('UserClaimCodes');
      await before.ds.query("INSERT INTO customers (id, product_id, username, password_hash, created_at) VALUES ('c1', 7, 'cust', NULL, 1)");
      await before.ds.query("INSERT INTO claim_codes (code_hash, product_id, customer_id, user_id, created_at, expires_at) VALUES ('h1', 7, 'c1', NULL, 1, 2), ('h2', 7, NULL, 'u1', 1, 2)");
      await before.ds.destroy();
      const ds = await before.upgrade();
      try {
        assert.deepEqual(await ds.query('SELECT code_hash, product_id, customer_id, user_id FROM claim_codes ORDER BY code_hash'), [
          { code_hash: 'h1', product_id: 7, customer_id: 'c1', user_id: null },
          { code_hash: 'h2', product_id: 7, customer_id: null, user_id: 'u1' },
        ]);
        await ds.query("INSERT INTO claim_codes (code_hash, product_id, customer_id, user_id, created_at, expires_at) VALUES ('h3', NULL, NULL, 'u1', 1, 2)");
        await assert.rejects(ds.query("INSERT INTO claim_codes (code_hash, product_id, customer_id, user_id, created_at, expires_at) VALUES ('h4', NULL, 'c1', NULL, 1, 2)"), /CHECK/);
      } finally {
        await ds.destroy();
      }
    });

    it('upgrading a file made before devices had a last IP address keeps its devices, with none', async () => {
      const before = await fileBefore('DeviceIp');
      await before.ds.query("INSERT INTO devices (id, name, notes, product_id, owner_user_id, customer_id, firmware_version, variables, functions, online, last_heard, last_handshake_at, development, quarantined, locked_firmware, created_at) VALUES ('dddddddddddddddddddddddd', 'old', NULL, 7, NULL, NULL, 3, '{}', '[]', 1, 5, 5, 0, 0, NULL, 1)");
      await before.ds.destroy();
      const ds = await before.upgrade();
      try {
        assert.deepEqual(await ds.query('SELECT id, name, firmware_version, online, last_ip_address FROM devices'), [
          { id: 'dddddddddddddddddddddddd', name: 'old', firmware_version: 3, online: 1, last_ip_address: null },
        ]);
      } finally {
        await ds.destroy();
      }
    });

    it('upgrading a file whose products were numbered below 1000 keeps their ids and numbers the next from 1000', async () => {
      const before = await fileBefore('ProductIds');
      await before.ds.query("INSERT INTO products (name, slug, owner_user_id, org_id, settings, created_at) VALUES ('two', 'two', 'u1', NULL, '{}', 1)");
      await before.ds.destroy();
      const ds = await before.upgrade();
      try {
        await ds.query("INSERT INTO products (name, slug, owner_user_id, org_id, settings, created_at) VALUES ('three', 'three', 'u1', NULL, '{}', 1)");
        assert.deepEqual(await ds.query('SELECT id, slug FROM products ORDER BY id'), [
          { id: 7, slug: 'old' },
          { id: 8, slug: 'two' },
          { id: 1000, slug: 'three' },
        ]);
      } finally {
        await ds.destroy();
      }
    });

    it('the migrations render as PostgreSQL DDL (typeorm SQL-in-memory mode, no server)', async () => {
      // A stub for the pg module: enough for typeorm to build a PostgreSQL query runner that records SQL instead of sending it.
      const ds = new DataSource({ type: 'postgres', driver: { defaults: {}, types: { setTypeParser() {} } } });
      const qr = ds.createQueryRunner();
      qr.enableSqlMemory();
      for (const M of MIGRATIONS) await new M().up(qr);
      const sql = qr.getMemorySql().upQueries.map((q) => q.query);
      assert.equal(sql.filter((q) => q.startsWith('CREATE TABLE ')).length, 34);
      // Creates, and the in-place changes of the integration-owners migration (its one column made optional, two added, their keys, the check)
      // of the user-claim-codes one (the product made optional, a check), and of the device-ip one (a column);
      // the product-ids one moves the products' sequence.
      assert.deepEqual(sql.filter((q) => !/^CREATE (TABLE|INDEX) /.test(q) && !/^ALTER TABLE "(integrations|claim_codes|devices)" /.test(q)), [
        `SELECT setval(pg_get_serial_sequence('products', 'id'), GREATEST(999, (SELECT COALESCE(MAX(id), 0) FROM products)))`,
      ]);
      assert.deepEqual(
        sql.filter((q) => q.startsWith('ALTER TABLE ')).map((q) => q.replace(/"FK_[0-9a-f]+"/, '"FK_…"').replace(/ CHECK .*/, ' CHECK …')),
        [
          'ALTER TABLE "integrations" ALTER COLUMN "product_id" DROP NOT NULL',
          'ALTER TABLE "integrations" ADD "user_id" varchar',
          'ALTER TABLE "integrations" ADD "org_id" varchar',
          'ALTER TABLE "integrations" ADD CONSTRAINT "FK_…" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE',
          'ALTER TABLE "integrations" ADD CONSTRAINT "FK_…" FOREIGN KEY ("org_id") REFERENCES "organizations"("id") ON DELETE CASCADE',
          'ALTER TABLE "integrations" ADD CONSTRAINT "chk_integrations_one_owner" CHECK …',
          'ALTER TABLE "claim_codes" ALTER COLUMN "product_id" DROP NOT NULL',
          'ALTER TABLE "claim_codes" ADD CONSTRAINT "chk_claim_codes_customer_product" CHECK …',
          'ALTER TABLE "devices" ADD "last_ip_address" varchar',
        ],
      );
      assert.deepEqual(sql.filter((q) => /AUTOINCREMENT|datetime|PRAGMA/i.test(q)), [], 'no SQLite-only SQL');
      assert.match(sql.find((q) => q.startsWith('CREATE TABLE "products"')) ?? '', /"id" SERIAL NOT NULL/);
    });
  });

  describe('users', () => {
    it('creates a user (username lowercased) and verifies the password', async () => {
      const u = await store.createUser('  Alice@Example.com ', 'correct horse');
      assert.match(u.id, /^[0-9a-f]{24}$/);
      assert.equal(u.username, 'alice@example.com');
      assert.equal(u.createdAt.getTime(), T0);
      assert.deepEqual(await store.verifyPassword('ALICE@example.com', 'correct horse'), u);
      assert.deepEqual(await store.getUser(u.id), u);
      assert.equal(await store.hasUsers(), true);
    });

    it('refuses a wrong password, an unknown user, a taken username and empty credentials', async () => {
      assert.equal(await store.verifyPassword('alice@example.com', 'wrong'), null);
      assert.equal(await store.verifyPassword('alice@example.com', ''), null);
      assert.equal(await store.verifyPassword('nobody@example.com', 'correct horse'), null);
      await refused(store.createUser('ALICE@example.com', 'other'), 'conflict', /taken/);
      await refused(store.createUser('   ', 'pw'), 'invalid');
      await refused(store.createUser('bob@example.com', ''), 'invalid');
      assert.equal(await store.getUser('000000000000000000000000'), null);
    });

    it('hashes passwords with scrypt at the default cost unless told otherwise', async () => {
      const other = await openSqliteStore({ file: join(dir, 'costs.db') });
      try {
        assert.equal(await other.hasUsers(), false);
        const u = await other.createUser('slow@example.com', 'slow password');
        assert.ok(await other.verifyPassword('slow@example.com', 'slow password'));
        const db = raw(other.file);
        const row = db.prepare('SELECT password_hash FROM users WHERE id = ?').get(u.id) as { password_hash: string };
        db.close();
        assert.match(row.password_hash, /^scrypt\$32768\$8\$3\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
      } finally {
        await other.close();
      }
    });
  });

  describe('tokens', () => {
    let userId: string;
    before(async () => {
      userId = (await store.createUser('tokens@example.com', 'pw-tokens')).id;
    });

    it('issues 32 random bytes as base64url and finds the token by its hash', async () => {
      const t = await store.issueToken({ subject: { kind: 'user', id: userId }, clientId: 'particle-cli', scopes: ['a', 'b'], ttlSeconds: 3600 });
      assert.match(t.token, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(Buffer.from(t.token, 'base64url').length, 32);
      assert.equal(t.expiresAt?.getTime(), clock + 3600_000);
      assert.equal(t.refreshToken, null);
      assert.deepEqual(await store.findToken(t.token), {
        id: createHash('sha256').update(t.token).digest('hex').slice(0, 20),
        subject: { kind: 'user', id: userId },
        clientId: 'particle-cli',
        scopes: ['a', 'b'],
        expiresAt: new Date(clock + 3600_000),
        revokedAt: null,
        createdAt: new Date(clock),
      });
    });

    it('lists a subject\'s live tokens by handle, newest first, and revokes one by handle or all at once', async () => {
      const who = { kind: 'user' as const, id: (await store.createUser('list@example.com', 'pw-list')).id };
      const a = await store.issueToken({ subject: who, clientId: 'particle', scopes: [], ttlSeconds: 60 });
      clock += 1000;
      const b = await store.issueToken({ subject: who, clientId: 'particle-cli', scopes: ['x'], ttlSeconds: null });
      const c = await store.issueToken({ subject: who, clientId: 'particle', scopes: [], ttlSeconds: 3600 });
      const other = await store.issueToken({ subject: { kind: 'user', id: userId }, clientId: 'particle', scopes: [], ttlSeconds: 3600 });
      await store.revokeToken(c.token);
      const hash = (t: string) => createHash('sha256').update(t).digest('hex');
      // c is revoked, other is someone else's; a and b, b newest.
      assert.deepEqual((await store.listTokens(who)).map((t) => t.id), [hash(b.token).slice(0, 20), hash(a.token).slice(0, 20)]);
      clock += 61_000;
      assert.deepEqual((await store.listTokens(who)).map((t) => t.clientId), ['particle-cli'], 'a expired');
      assert.deepEqual(await store.revokeTokensOf(who, hash(other.token).slice(0, 20)), [], 'not theirs');
      assert.deepEqual(await store.revokeTokensOf(who, hash(b.token).slice(0, 20)), [hash(b.token)]);
      assert.deepEqual(await store.listTokens(who), []);
      const d = await store.issueToken({ subject: who, clientId: 'particle', scopes: [], ttlSeconds: 60 });
      const e = await store.issueToken({ subject: who, clientId: 'particle', scopes: [], ttlSeconds: 60 });
      // a expired unrevoked: revoked too (an expired token's refresh token would still get a new one).
      assert.deepEqual((await store.revokeTokensOf(who)).sort(), [hash(a.token), hash(d.token), hash(e.token)].sort());
      assert.ok((await store.findToken(e.token))?.revokedAt);
      assert.equal((await store.findToken(other.token))?.revokedAt, null, 'another subject untouched');
    });

    it("revoking a subject's tokens ends the refresh tokens of its expired access tokens too", async () => {
      const who = { kind: 'user' as const, id: (await store.createUser('refresh@example.com', 'pw-refresh')).id };
      const t = await store.issueToken({ subject: who, clientId: 'particle', scopes: [], ttlSeconds: 60, refresh: true });
      clock += 61_000;
      assert.equal((await store.listTokens(who)).length, 1, 'expired, and still live through its refresh token');
      await store.revokeTokensOf(who);
      assert.equal(await store.refreshToken(t.refreshToken!, 60, ['particle']), null, 'its refresh token is spent with it');
      assert.deepEqual(await store.listTokens(who), []);
    });

    it('deleting a client revokes every token issued through it, and names them', async () => {
      const who = { kind: 'user' as const, id: (await store.createUser('client@example.com', 'pw-client')).id };
      const { client } = await store.createClient({ name: 'c', type: 'installed', ownerUserId: who.id });
      const hash = (x: string) => createHash('sha256').update(x).digest('hex');
      const mine = await store.issueToken({ subject: who, clientId: client.id, scopes: [], ttlSeconds: null, refresh: true });
      const other = await store.issueToken({ subject: who, clientId: 'particle', scopes: [], ttlSeconds: 60 });
      assert.deepEqual(await store.deleteClient(client.id), [hash(mine.token)]);
      assert.ok((await store.findToken(mine.token))?.revokedAt);
      assert.equal(await store.refreshToken(mine.refreshToken!, 60, [client.id]), null);
      assert.equal((await store.findToken(other.token))?.revokedAt, null, "another client's token untouched");
      assert.equal(await store.deleteClient(client.id), null, 'no such client now');
    });

    it('answers null for an unknown or empty token', async () => {
      assert.equal(await store.findToken('x'.repeat(43)), null);
      assert.equal(await store.findToken(''), null);
      assert.equal(await store.revokeToken('x'.repeat(43)), false);
    });

    it('returns an expired token with its expiry, for the caller to refuse', async () => {
      const t = await store.issueToken({ subject: { kind: 'customer', id: 'c1' }, clientId: 'web', scopes: [], ttlSeconds: 60 });
      clock += 61_000;
      const found = await store.findToken(t.token);
      assert.ok(found && found.expiresAt && found.expiresAt.getTime() < clock, 'expired');
      assert.equal(found.revokedAt, null);
    });

    it('revokes a token once; the record says when', async () => {
      const t = await store.issueToken({ subject: { kind: 'apiUser', id: 'api1' }, clientId: 'svc', scopes: ['devices:list'], ttlSeconds: 600 });
      assert.equal(await store.revokeToken(t.token), true);
      assert.equal(await store.revokeToken(t.token), false);
      assert.equal((await store.findToken(t.token))?.revokedAt?.getTime(), clock);
    });

    it('issues a token that never expires when ttlSeconds is null, and refuses a bad ttl or subject', async () => {
      const t = await store.issueToken({ subject: { kind: 'user', id: userId }, clientId: 'particle', scopes: [], ttlSeconds: null });
      assert.equal(t.expiresAt, null);
      assert.equal((await store.findToken(t.token))?.expiresAt, null);
      await refused(store.issueToken({ subject: { kind: 'user', id: userId }, clientId: 'c', scopes: [], ttlSeconds: 0 }), 'invalid');
      await refused(store.issueToken({ subject: { kind: 'user', id: userId }, clientId: 'c', scopes: [], ttlSeconds: 1.5 }), 'invalid');
      await refused(store.issueToken({ subject: { kind: 'device' as 'user', id: userId }, clientId: 'c', scopes: [], ttlSeconds: 60 }), 'invalid');
      await refused(store.issueToken({ subject: { kind: 'user', id: userId }, clientId: '', scopes: [], ttlSeconds: 60 }), 'invalid');
    });

    it('rotates a refresh token: a new pair, the old token revoked, the old refresh token spent', async () => {
      const first = await store.issueToken({ subject: { kind: 'user', id: userId }, clientId: 'particle-cli', scopes: ['s'], ttlSeconds: 3600, refresh: true });
      assert.ok(first.refreshToken && first.refreshToken !== first.token);
      // Only by the client it was issued to: another leaves it unspent.
      assert.equal(await store.refreshToken(first.refreshToken, 1800, ['particle', 'app-1']), null);
      const second = await store.refreshToken(first.refreshToken, 1800, ['particle-cli']);
      assert.ok(second && second.refreshToken);
      assert.equal(second.expiresAt?.getTime(), clock + 1800_000);
      assert.ok((await store.findToken(first.token))?.revokedAt, 'old access token revoked');
      const now = await store.findToken(second.token);
      assert.deepEqual([now?.subject, now?.clientId, now?.scopes, now?.revokedAt], [{ kind: 'user', id: userId }, 'particle-cli', ['s'], null]);
      assert.equal(await store.refreshToken(first.refreshToken, 1800, ['particle-cli']), null, 'a refresh token works once');
      assert.equal(await store.refreshToken('nope', 1800, ['particle-cli']), null);
      // Revoking by the refresh token revokes its access token.
      assert.equal(await store.revokeToken(second.refreshToken), true);
      assert.ok((await store.findToken(second.token))?.revokedAt);
    });

    it('keeps only hashes: neither tokens nor passwords appear in the database file', async () => {
      const password = 'plaintext-password-7f3a9c';
      const u = await store.createUser('hashes@example.com', password);
      const t = await store.issueToken({ subject: { kind: 'user', id: u.id }, clientId: 'c', scopes: [], ttlSeconds: 60, refresh: true });
      await store.createDevice({ id: DEV3, productId: (await store.createProduct({ name: 'H', slug: 'hashes', ownerUserId: u.id })).id });
      await store.setDeviceSecret(DEV3, 'device-secret-plaintext-41b2');
      const check = () => {
        const bytes = databaseBytes(file);
        assert.ok(bytes.includes(Buffer.from('hashes@example.com')), 'the scan sees recent writes');
        assert.ok(bytes.includes(Buffer.from(sha256(t.token))), 'the token hash is stored');
        for (const secret of [t.token, t.refreshToken as string, password, 'device-secret-plaintext-41b2'])
          assert.ok(!bytes.includes(Buffer.from(secret)), 'plaintext secret found in the database: ' + secret);
      };
      check();
      await store.close(); // checkpoints the WAL into the main file
      check();
      store = await open();
      const db = raw(file);
      const row = db.prepare('SELECT token_hash, refresh_token_hash FROM access_tokens WHERE token_hash = ?').get(sha256(t.token));
      db.close();
      assert.deepEqual(row, { token_hash: sha256(t.token), refresh_token_hash: sha256(t.refreshToken as string) });
    });
  });

  describe('orgs, products and memberships', () => {
    const u: { [name: string]: string } = {};
    let orgId: string;
    let orgProduct: number;
    let personal: number;
    before(async () => {
      for (const n of ['owner', 'olivia', 'admin', 'dev', 'viewer', 'solo', 'outsider']) u[n] = (await store.createUser(n + '@teams.test', 'pw-' + n)).id;
    });

    it('creates an org with a slug from its name; refuses a taken name, an unknown owner, an empty name', async () => {
      const o = await store.createOrg('Acme Robotics, Inc.', u.olivia);
      orgId = o.id;
      assert.deepEqual([o.name, o.slug, o.ownerUserId], ['Acme Robotics, Inc.', 'acme-robotics-inc', u.olivia]);
      assert.deepEqual(await store.getOrg(o.id), o);
      assert.deepEqual(await store.getOrg('acme-robotics-inc'), o);
      await refused(store.createOrg('Acme Robotics, Inc.', u.owner), 'conflict');
      await refused(store.createOrg('acme robotics inc', u.owner), 'conflict', /acme-robotics-inc/);
      await refused(store.createOrg('Other', '000000000000000000000000'), 'not_found');
      await refused(store.createOrg(' ', u.owner), 'invalid');
      await refused(store.createOrg('!!!', u.owner), 'invalid');
    });

    it('creates products with integer ids from 1000 (past every Particle platform id), owned by a user or by an org', async () => {
      const p = await store.createProduct({ name: 'Personal', slug: 'personal-1', ownerUserId: u.solo, settings: { color: 'blue' } });
      const q = await store.createProduct({ name: 'Org product', slug: 'org-product', orgId });
      personal = p.id;
      orgProduct = q.id;
      assert.ok(Number.isInteger(p.id) && q.id > p.id);
      assert.ok(p.id >= 1000, `product id ${p.id}`);
      assert.deepEqual([p.ownerUserId, p.orgId, p.settings], [u.solo, null, { color: 'blue' }]);
      assert.deepEqual([q.ownerUserId, q.orgId, q.settings], [null, orgId, {}]);
      assert.deepEqual(await store.getProduct(p.id), p);
      assert.deepEqual(await store.getProduct(String(p.id)), p);
      assert.deepEqual(await store.getProduct('org-product'), q);
      assert.equal(await store.getProduct('nope'), null);
    });

    it('refuses a taken slug, both owners, neither owner, an unknown owner and a bad slug', async () => {
      await refused(store.createProduct({ name: 'Dup', slug: 'personal-1', ownerUserId: u.solo }), 'conflict', /slug/);
      await refused(store.createProduct({ name: 'Both', slug: 'both', ownerUserId: u.solo, orgId } as never), 'invalid', /exactly one/);
      await refused(store.createProduct({ name: 'Neither', slug: 'neither' } as never), 'invalid', /exactly one/);
      await refused(store.createProduct({ name: 'Ghost', slug: 'ghost', ownerUserId: '000000000000000000000000' }), 'not_found');
      await refused(store.createProduct({ name: 'Ghost', slug: 'ghost', orgId: '000000000000000000000000' }), 'not_found');
      for (const slug of ['12345', 'Upper', 'sp ace', '-dash', 'dash-', ''])
        await refused(store.createProduct({ name: 'Bad', slug, ownerUserId: u.solo }), 'invalid');
      await refused(store.createProduct({ name: '', slug: 'no-name', ownerUserId: u.solo }), 'invalid');
    });

    it('the database itself refuses a product with both or neither owner (CHECK constraint)', () => {
      const db = raw(file, false);
      try {
        for (const [owner, org] of [[u.solo, orgId], [null, null]])
          assert.throws(
            () => db.prepare(`INSERT INTO products (name, slug, owner_user_id, org_id, settings, created_at) VALUES ('x', 'x-${String(owner)}', ?, ?, '{}', 0)`).run(owner, org),
            (e: { code?: string }) => e.code === 'SQLITE_CONSTRAINT_CHECK',
          );
      } finally {
        db.close();
      }
    });

    it('adds team members with roles, refusing the Owner role, the Owner, duplicates and unknown users', async () => {
      await store.addOrgMember(orgId, u.admin, 'administrator');
      await store.addOrgMember(orgId, u.dev, 'developer');
      await store.addProductMember(personal, u.viewer, 'viewer');
      await store.addProductMember(String(personal), u.dev, 'support');
      await refused(store.addOrgMember(orgId, u.viewer, 'owner' as never), 'invalid');
      await refused(store.addOrgMember(orgId, u.olivia, 'viewer'), 'conflict', /Owner/);
      await refused(store.addOrgMember(orgId, u.admin, 'viewer'), 'conflict', /already/);
      await refused(store.addOrgMember(orgId, '000000000000000000000000', 'viewer'), 'not_found');
      await refused(store.addOrgMember('000000000000000000000000', u.viewer, 'viewer'), 'not_found');
      await refused(store.addProductMember(personal, u.solo, 'viewer'), 'conflict', /Owner/);
      await refused(store.addProductMember(personal, u.viewer, 'developer'), 'conflict', /already/);
      await refused(store.addProductMember(orgProduct, u.olivia, 'viewer'), 'conflict', /Owner/);
      await refused(store.addProductMember(orgProduct, u.admin, 'viewer'), 'conflict', /^admin@teams\.test already has access to product \d+ through org acme-robotics-inc$/);
      await refused(store.addProductMember(999999, u.viewer, 'viewer'), 'not_found');
      await refused(store.addProductMember('not-a-number', u.viewer, 'viewer'), 'invalid');
      await refused(store.addProductMember(personal, '000000000000000000000000', 'viewer'), 'not_found');
    });

    it('memberships(): the shapes the policy reads, ids as strings, ownership as owner', async () => {
      assert.deepEqual(await store.memberships(u.olivia), { orgs: { [orgId]: 'owner' }, products: {} });
      assert.deepEqual(await store.memberships(u.admin), { orgs: { [orgId]: 'administrator' }, products: {} });
      assert.deepEqual(await store.memberships(u.dev), { orgs: { [orgId]: 'developer' }, products: { [String(personal)]: 'support' } });
      assert.deepEqual(await store.memberships(u.solo), { orgs: {}, products: { [String(personal)]: 'owner' } });
      assert.deepEqual(await store.memberships(u.outsider), { orgs: {}, products: {} });
    });

    it('productRef(): by integer id, digit string or slug, with the org Owner for an org product', async () => {
      const own = { productId: String(personal), ownerUserId: u.solo, orgId: null, orgOwnerUserId: null };
      assert.deepEqual(await store.productRef(personal), own);
      assert.deepEqual(await store.productRef(String(personal)), own);
      assert.deepEqual(await store.productRef('personal-1'), own);
      assert.deepEqual(await store.productRef('org-product'), { productId: String(orgProduct), ownerUserId: null, orgId, orgOwnerUserId: u.olivia });
      assert.equal(await store.productRef('missing'), null);
      assert.equal(await store.productRef(424242), null);
    });

    it('lists each team: the Owner first, then the members', async () => {
      const byId = (m: { userId: string }[]) => m.slice(1).map((x) => x.userId);
      const org = await store.orgTeam(orgId);
      assert.deepEqual(org[0], { userId: u.olivia, role: 'owner' });
      assert.deepEqual(new Set(org.slice(1)), new Set([{ userId: u.admin, role: 'administrator' }, { userId: u.dev, role: 'developer' }]));
      const team = await store.productTeam(personal);
      assert.deepEqual(team[0], { userId: u.solo, role: 'owner' });
      assert.deepEqual(byId(team).sort(), [u.viewer, u.dev].sort());
      assert.deepEqual(await store.productTeam(orgProduct), [], 'an org product has no Owner row and no own team yet');
    });

    it('joining an org removes the product-team memberships on its products, and says which', async () => {
      const second = await store.createProduct({ name: 'Org product 2', slug: 'org-product-2', orgId });
      await store.addProductMember(second.id, u.viewer, 'support');
      await store.addProductMember(personal, u.outsider, 'viewer');
      const removed = await store.addOrgMember(orgId, u.viewer, 'viewer');
      assert.deepEqual(removed, [{ productId: String(second.id), role: 'support' }]);
      assert.deepEqual(await store.memberships(u.viewer), { orgs: { [orgId]: 'viewer' }, products: { [String(personal)]: 'viewer' } });
    });

    it('removes members; the Owner is not a member', async () => {
      assert.equal(await store.removeOrgMember(orgId, u.admin), true);
      assert.equal(await store.removeOrgMember(orgId, u.admin), false);
      assert.equal(await store.removeOrgMember(orgId, u.olivia), false);
      assert.equal(await store.removeProductMember(personal, u.outsider), true);
      assert.deepEqual(await store.memberships(u.admin), { orgs: {}, products: {} });
      assert.deepEqual((await store.orgTeam(orgId))[0], { userId: u.olivia, role: 'owner' });
    });
  });

  describe('devices', () => {
    let productId: number;
    before(async () => {
      const owner = await store.createUser('fleet@example.com', 'pw-fleet');
      productId = (await store.createProduct({ name: 'Fleet', slug: 'fleet', ownerUserId: owner.id })).id;
    });

    it('creates a device with Particle-like defaults', async () => {
      const d = await store.createDevice({ id: DEV1, productId, name: ' kitchen ' });
      assert.deepEqual(d, {
        id: DEV1, name: 'kitchen', notes: null, productId, ownerUserId: null, customerId: null, firmwareVersion: null,
        variables: {}, functions: [], online: false, lastHeard: null, lastHandshakeAt: null, lastIpAddress: null,
        development: false, quarantined: false, lockedFirmware: null, createdAt: new Date(clock),
      });
      assert.deepEqual(await store.getDevice(DEV1), d);
      await store.createDevice({ id: DEV2, productId: String(productId) });
      assert.deepEqual((await store.listDevices(productId)).map((x) => x.id), [DEV1, DEV2]);
      assert.equal(await store.getDevice('ffffffffffffffffffffffff'), null);
    });

    it('refuses a bad id, a taken id and an unknown product', async () => {
      for (const id of ['0123456789ABCDEF01234567', '0123', 'g123456789abcdef01234567', ''])
        await refused(store.createDevice({ id, productId }), 'invalid');
      await refused(store.createDevice({ id: DEV1, productId }), 'conflict');
      await refused(store.createDevice({ id: 'bbbbbbbbbbbbbbbbbbbbbbbb', productId: 987654 }), 'not_found');
    });

    it('refuses device names that would lie on a screen or read as an ID, and a name another device of the account has', async () => {
      const owner = await store.createUser('names@example.com', 'pw-names');
      const [n1, n2, n3] = ['cccccccccccccccccccccc01', 'cccccccccccccccccccccc02', 'cccccccccccccccccccccc03'];
      for (const id of [n1, n2, n3]) await store.createDevice({ id, productId });
      await store.setDeviceOwner(n1, owner.id);
      await store.setDeviceOwner(n2, owner.id);
      for (const bad of ['tab\there', 'bell\u0007', 'c1\u0085', 'line\u2028break', 'gnp.exe\u202eexe', 'iso\u2066late', 'zero\u200bwidth', 'b\ufeffom', 'ABCDEF0123456789abcdef01'])
        await refused(store.updateDevice(n1, { name: bad }), 'invalid');
      await refused(store.createDevice({ id: 'cccccccccccccccccccccc04', productId, name: 'new\nline' }), 'invalid');
      assert.equal((await store.updateDevice(n1, { name: 'Kitchen' })).name, 'Kitchen');
      // The same account: taken, in any case; renaming a device to its own name is no conflict.
      await refused(store.updateDevice(n2, { name: 'kitchen' }), 'conflict');
      assert.equal((await store.updateDevice(n1, { name: 'KITCHEN' })).name, 'KITCHEN');
      // Another account (here: none) may use it, as Particle's products may repeat names.
      assert.equal((await store.updateDevice(n3, { name: 'kitchen' })).name, 'kitchen');
      // Letters of any script are names.
      assert.equal((await store.updateDevice(n2, { name: 'Küche · 厨房' })).name, 'Küche · 厨房');
      // Claimed into an account that has its name: the claim goes through, the device gets the
      // first free "name-N" (the base cut so the name stays within 64 characters).
      await store.setDeviceOwner(n3, owner.id);
      assert.equal((await store.getDevice(n3))!.name, 'kitchen-2');
      const [n4, n5] = ['cccccccccccccccccccccc04', 'cccccccccccccccccccccc05'];
      const long = 'x'.repeat(63) + 'y';
      await store.createDevice({ id: n4, productId, name: 'KITCHEN' });
      await store.createDevice({ id: n5, productId, name: long });
      await store.setDeviceOwner(n4, owner.id);
      assert.equal((await store.getDevice(n4))!.name, 'KITCHEN-3');
      await store.updateDevice(n1, { name: long });
      await store.setDeviceOwner(n5, owner.id);
      assert.equal((await store.getDevice(n5))!.name, 'x'.repeat(62) + '-2');
      // Unclaimed, it keeps its name.
      await store.setDeviceOwner(n5, null);
      assert.equal((await store.getDevice(n5))!.name, 'x'.repeat(62) + '-2');
    });

    it('deviceProduct(): the device product as the policy reads it', async () => {
      const ref = await store.deviceProduct(DEV1);
      assert.equal(ref?.productId, String(productId));
      assert.equal(await store.deviceProduct('ffffffffffffffffffffffff'), null);
    });

    it('verifies a device secret; wrong, unknown, unset and replaced secrets fail', async () => {
      assert.equal(await store.verifyDeviceSecret(DEV1, 'anything'), false, 'no secret set yet');
      await store.setDeviceSecret(DEV1, 's3cret-1');
      assert.equal(await store.verifyDeviceSecret(DEV1, 's3cret-1'), true);
      assert.equal(await store.verifyDeviceSecret(DEV1, 's3cret-2'), false);
      assert.equal(await store.verifyDeviceSecret(DEV1, ''), false);
      assert.equal(await store.verifyDeviceSecret('ffffffffffffffffffffffff', 's3cret-1'), false);
      await store.setDeviceSecret(DEV1, 's3cret-2');
      assert.equal(await store.verifyDeviceSecret(DEV1, 's3cret-1'), false);
      assert.equal(await store.verifyDeviceSecret(DEV1, 's3cret-2'), true);
      await refused(store.setDeviceSecret('ffffffffffffffffffffffff', 'x'), 'not_found');
      await refused(store.setDeviceSecret(DEV1, ''), 'invalid');
      const db = raw(file);
      const row = db.prepare('SELECT secret_hash FROM device_credentials WHERE device_id = ?').get(DEV1) as { secret_hash: string };
      db.close();
      assert.match(row.secret_hash, /^scrypt\$/);
    });

    it('a revoked credential no longer verifies, until a new secret is set', async () => {
      const db = raw(file, false);
      db.prepare('UPDATE device_credentials SET revoked_at = 1 WHERE device_id = ?').run(DEV1);
      db.close();
      assert.equal(await store.verifyDeviceSecret(DEV1, 's3cret-2'), false);
      await store.setDeviceSecret(DEV1, 's3cret-3');
      assert.equal(await store.verifyDeviceSecret(DEV1, 's3cret-3'), true);
    });

    it('recordHello(): firmware, variables as name → type, functions; online, heard and handshaken', async () => {
      const at = new Date(clock + 1000);
      await store.recordHello(DEV1, { firmware: 7, variables: [{ name: 'temp', type: 'double' }, { name: 'on', type: 'bool' }], functions: ['led', 'reset'] }, at);
      const d = await store.getDevice(DEV1);
      assert.deepEqual(
        [d?.firmwareVersion, d?.variables, d?.functions, d?.online, d?.lastHandshakeAt, d?.lastHeard],
        [7, { temp: 'double', on: 'bool' }, ['led', 'reset'], true, at, at],
      );
      await refused(store.recordHello('ffffffffffffffffffffffff', { firmware: 1, variables: [], functions: [] }, at), 'not_found');
    });

    it('presence: offline, a stale offline ignored, last_heard only moves forward', async () => {
      const hello = (await store.getDevice(DEV1))?.lastHandshakeAt as Date;
      await store.setOnline(DEV1, false, new Date(hello.getTime() - 500));
      assert.equal((await store.getDevice(DEV1))?.online, true, 'an offline from before the last handshake is an older connection');
      await store.setOnline(DEV1, false, new Date(hello.getTime() + 500));
      assert.equal((await store.getDevice(DEV1))?.online, false);
      await store.setOnline(DEV1, true, new Date(hello.getTime() + 2000));
      const d = await store.getDevice(DEV1);
      assert.deepEqual([d?.online, d?.lastHeard?.getTime()], [true, hello.getTime() + 2000]);
      await store.touch(DEV1, new Date(hello.getTime() + 5000));
      await store.touch(DEV1, new Date(hello.getTime() + 3000));
      assert.equal((await store.getDevice(DEV1))?.lastHeard?.getTime(), hello.getTime() + 5000);
      await refused(store.touch('ffffffffffffffffffffffff', new Date()), 'not_found');
      await refused(store.setOnline('ffffffffffffffffffffffff', true, new Date()), 'not_found');
      await refused(store.touch(DEV1, new Date(NaN)), 'invalid');
    });

    it('reads see presence and hellos still queued for the group commit (the broker does not wait for them)', async () => {
      const t = (await store.getDevice(DEV1))!.lastHeard!.getTime() + 10_000;
      void store.setOnline(DEV1, false, new Date(t));
      assert.equal((await store.getDevice(DEV1))?.online, false);
      void store.recordHello(DEV1, { firmware: 8, variables: [], functions: [] }, new Date(t + 1));
      const listed = (await store.listDevices((await store.getDevice(DEV1))!.productId)).find((d) => d.id === DEV1);
      assert.deepEqual([listed?.online, listed?.firmwareVersion], [true, 8]);
      await store.recordHello(DEV1, { firmware: 7, variables: [{ name: 'temp', type: 'double' }, { name: 'on', type: 'bool' }], functions: ['led', 'reset'] }, new Date(t + 2));
    });
  });

  describe('vitals', () => {
    const v = (uptime: number) => ({ 'device.system.uptime': uptime, 'device.network.signal.strength': 80 });

    it('keeps the latest report and appends every report to the history', async () => {
      await store.recordVitals(DEV1, v(10), new Date(T0 + 10_000));
      await store.recordVitals(DEV1, v(20), new Date(T0 + 20_000));
      // Handled late: older than the latest, so history only.
      await store.recordVitals(DEV1, v(15), new Date(T0 + 15_000));
      assert.deepEqual(await store.latestVitals(DEV1), { at: new Date(T0 + 20_000), values: v(20) });
      const h = await store.vitalsHistory(DEV1, new Date(T0), new Date(T0 + 60_000));
      assert.deepEqual(h.map((s) => s.values['device.system.uptime']), [10, 15, 20]);
      assert.deepEqual(h[0], { at: new Date(T0 + 10_000), values: v(10) });
    });

    it('reads a history range: from inclusive, to exclusive, with a limit', async () => {
      const up = async (from: number, to: number, limit?: number) =>
        (await store.vitalsHistory(DEV1, new Date(T0 + from), new Date(T0 + to), limit)).map((s) => s.values['device.system.uptime']);
      assert.deepEqual(await up(15_000, 20_000), [15]);
      assert.deepEqual(await up(15_000, 20_001), [15, 20]);
      // Past the limit, the newest of the range (oldest first): a default range of 30 days must show the latest vitals.
      assert.deepEqual(await up(0, 60_000, 2), [15, 20]);
      assert.deepEqual(await up(0, 20_000, 2), [10, 15]);
      assert.deepEqual(await store.vitalsHistory(DEV2, new Date(T0), new Date(T0 + 60_000)), []);
      assert.equal(await store.latestVitals(DEV2), null);
    });

    it('reads the latest vitals of a whole product in one call, by device', async () => {
      const productId = (await store.getDevice(DEV1))!.productId;
      const all = await store.latestVitalsOfProduct(productId);
      // DEV2 (same product) has none; DEV3 is in another product.
      assert.deepEqual([...all.keys()], [DEV1]);
      assert.deepEqual(all.get(DEV1), await store.latestVitals(DEV1));
      assert.equal((await store.latestVitalsOfProduct(String(productId))).size, 1, 'an id given as a string');
    });

    it('writes the reports of one turn of the event loop together; one for an unknown device fails alone', async () => {
      const at = (i: number) => new Date(T0 + 30_000 + i);
      // 300 at once: more than one batch (256), all in the same turn.
      const writes = Array.from({ length: 300 }, (_, i) => store.recordVitals(DEV2, v(1000 + i), at(i)));
      const stranger = store.recordVitals('eeeeeeeeeeeeeeeeeeeeeeee', v(1), at(0));
      const settled = await Promise.allSettled([...writes, stranger]);
      assert.deepEqual(settled.slice(0, 300).map((r) => r.status), Array(300).fill('fulfilled'));
      assert.equal(settled[300].status, 'rejected');
      assert.equal(((settled[300] as PromiseRejectedResult).reason as { code: string }).code, 'not_found');
      const h = await store.vitalsHistory(DEV2, at(0), at(300), 1000);
      assert.deepEqual(h.map((x) => x.values['device.system.uptime']), Array.from({ length: 300 }, (_, i) => 1000 + i));
      assert.deepEqual(await store.latestVitals(DEV2), { at: at(299), values: v(1299) });
      // A report is on disk when its promise resolves: another connection sees it.
      await store.recordVitals(DEV2, v(5000), at(400));
      const db = raw(file);
      const n = db.prepare('SELECT COUNT(*) AS n FROM vitals_history WHERE device_id = ? AND at = ?').get(DEV2, T0 + 30_400);
      db.close();
      assert.deepEqual(n, { n: 1 });
      // Refused before it is queued: not an object.
      await refused(store.recordVitals(DEV2, [] as never, at(500)), 'invalid');
    });

    it('refuses an unknown device and writes nothing for it', async () => {
      await refused(store.recordVitals('ffffffffffffffffffffffff', v(1), new Date(T0)), 'not_found');
      const db = raw(file);
      const n = db.prepare("SELECT COUNT(*) AS n FROM vitals_history WHERE device_id = 'ffffffffffffffffffffffff'").get();
      db.close();
      assert.deepEqual(n, { n: 0 });
    });
  });

  describe('errors', () => {
    let productId: number;
    before(async () => {
      productId = (await store.getDevice(DEV1))?.productId as number;
      await store.recordHello(DEV2, { firmware: 7, variables: [], functions: [] }, new Date(T0));
    });

    it('stores reports with the device product and firmware, grouped with summed counts', async () => {
      await store.recordError(DEV1, errorReport({ count: 3 }), new Date(T0 + 1));
      await store.recordError(DEV2, errorReport(), new Date(T0 + 2));
      await store.recordError(DEV1, errorReport({ source: 'crash', name: '', message: 'out of memory' }), new Date(T0 + 3));
      // The device moves to firmware 8: the same error there is a separate group.
      await store.recordHello(DEV1, { firmware: 8, variables: [], functions: [] }, new Date(T0 + 4));
      await store.recordError(DEV1, errorReport(), new Date(T0 + 5));
      assert.deepEqual(await store.errorsByProduct(productId), [
        { source: 'function', name: 'led', message: 'TypeError: x is undefined', firmwareVersion: 7, count: 4, devices: 2, lastAt: new Date(T0 + 2) },
        { source: 'function', name: 'led', message: 'TypeError: x is undefined', firmwareVersion: 8, count: 1, devices: 1, lastAt: new Date(T0 + 5) },
        { source: 'crash', name: '', message: 'out of memory', firmwareVersion: 7, count: 1, devices: 1, lastAt: new Date(T0 + 3) },
      ]);
      assert.deepEqual(await store.errorsByProduct(String(productId + 1000)), []);
    });

    it('refuses a report from an unknown device', async () => {
      await refused(store.recordError('ffffffffffffffffffffffff', errorReport(), new Date(T0)), 'not_found');
    });

    it("takes the firmware of a hello written just before it, though neither was awaited (one queue, in order)", async () => {
      const hello = store.recordHello(DEV2, { firmware: 9, variables: [], functions: [] }, new Date(T0 + 10));
      const report = store.recordError(DEV2, errorReport({ message: 'after the hello' }), new Date(T0 + 11));
      await Promise.all([hello, report]);
      const mine = (await store.errorsByProduct(productId)).filter((g) => g.message === 'after the hello');
      assert.deepEqual(mine.map((g) => g.firmwareVersion), [9]);
    });
  });

  describe('audit log', () => {
    const entry = (i: number, over = {}) => ({
      at: new Date(T0 + i * 1000),
      actorKind: 'user',
      actorId: 'u' + (i % 2),
      action: 'device.function',
      resourceKind: 'device',
      resourceId: DEV1,
      allowed: i % 3 !== 0,
      status: i % 3 !== 0 ? 200 : 403,
      reason: 'entry ' + i,
      ...over,
    });

    it('appends entries and reads them newest first', async () => {
      for (let i = 1; i <= 6; i++) await store.audit(entry(i));
      const log = await store.auditLog();
      assert.deepEqual(log.slice(0, 6).map((e) => e.reason), ['entry 6', 'entry 5', 'entry 4', 'entry 3', 'entry 2', 'entry 1']);
      const { id, ...first } = log[0];
      assert.ok(Number.isInteger(id));
      assert.deepEqual(first, entry(6));
    });

    it('filters by actor, resource, action, decision, time and count', async () => {
      await store.audit(entry(7, { resourceKind: 'product', resourceId: '1', action: 'team.manage' }));
      const reasons = async (f: Parameters<SqliteStore['auditLog']>[0]) => (await store.auditLog(f)).map((e) => e.reason);
      assert.deepEqual(await reasons({ actorId: 'u0' }), ['entry 6', 'entry 4', 'entry 2']);
      assert.deepEqual(await reasons({ allowed: false }), ['entry 6', 'entry 3']);
      assert.deepEqual(await reasons({ resourceKind: 'product', resourceId: '1' }), ['entry 7']);
      assert.deepEqual(await reasons({ action: 'team.manage' }), ['entry 7']);
      assert.deepEqual(await reasons({ since: new Date(T0 + 2000), until: new Date(T0 + 4000) }), ['entry 3', 'entry 2']);
      assert.deepEqual(await reasons({ actorKind: 'user', limit: 2 }), ['entry 7', 'entry 6']);
    });

    it('while the log cannot be written (another process holds the lock): entries wait and are written once it can, nothing thrown from the timer, said once; past its bound audit() refuses', async () => {
      const lockedFile = join(dir, 'locked.db');
      const errors: string[] = [];
      const s = await openSqliteStore({ file: lockedFile, busyTimeoutMs: 20, passwordCost: FAST, deviceSecretCost: FAST, onError: (what) => errors.push(what) });
      const Database = createRequire(import.meta.url)('better-sqlite3') as new (f: string) => { exec(sql: string): void; close(): void };
      const other = new Database(lockedFile);
      try {
        other.exec('BEGIN IMMEDIATE');
        // Before, the batched write threw from its timer: the bridge process ended (database is locked; a full disk the same).
        for (let i = 1; i <= 3; i++) await s.audit(entry(i));
        await new Promise((r) => setTimeout(r, 100));
        assert.deepEqual(errors, ['audit log not written; kept in memory and tried again every 1000 ms']);
        await assert.rejects(s.auditLog(), /database is locked/);
        // Held in memory up to a bound; past it, what cannot be recorded is refused.
        let refusedAt = -1;
        for (let i = 0; i < 100_001 && refusedAt < 0; i++) await s.audit(entry(4)).catch(() => (refusedAt = i));
        assert.equal(refusedAt, 100_000 - 3);
        other.exec('ROLLBACK');
        await new Promise((r) => setTimeout(r, 1300));
        await s.auditLog({ limit: 1 }); // writes what is held, if the retry has not yet
        const rows = (new Database(lockedFile) as unknown as { prepare(q: string): { get(): { n: number } } }).prepare('SELECT count(*) AS n FROM audit_log').get().n;
        assert.equal(rows, 100_000, 'every entry held was written once the lock was gone');
        assert.deepEqual((await s.auditLog({ since: new Date(T0), until: new Date(T0 + 3001) })).map((e) => e.reason), ['entry 3', 'entry 2', 'entry 1']);
        assert.equal(errors.length, 1, 'said once, not per retry');
      } finally {
        other.close();
        await s.close();
      }
    });
  });

  describe('retention', () => {
    const DAY = 86_400_000;
    const ago = (days: number, ms = 0) => new Date(T0 - days * DAY + ms);
    const silent = { info() {}, warn() {}, error() {}, debug() {} };
    const audited = (at: Date, reason: string) =>
      store.audit({ at, actorKind: 'user', actorId: 'u9', action: 'device.list', resourceKind: 'product', resourceId: '9', allowed: true, status: 200, reason });
    const inWindow = async () => ({
      vitals: (await store.vitalsHistory(DEV1, ago(1000), ago(1))).map((x) => x.values['device.system.uptime']),
      errors: (await store.errorsByProduct((await store.getDevice(DEV1))!.productId)).map((g) => g.message).filter((m) => m.startsWith('retained ')).sort(),
      audit: (await store.auditLog({ since: ago(1000), until: ago(1), limit: 3 })).map((e) => e.reason),
    });

    it('prune deletes vitals history, error reports and audit entries older than their cutoff, in batches; the latest vitals stay', async () => {
      const latest = await store.latestVitals(DEV1);
      await store.recordVitals(DEV1, { 'device.system.uptime': 400 }, ago(400));
      await store.recordVitals(DEV1, { 'device.system.uptime': 50 }, ago(50));
      await store.recordError(DEV1, errorReport({ message: 'retained 400' }), ago(400));
      await store.recordError(DEV1, errorReport({ message: 'retained 50' }), ago(50));
      // More than one batch (5,000) of old entries.
      for (let i = 0; i < 12_000; i++) void audited(ago(400, i), 'old');
      await audited(ago(50), 'kept');
      assert.deepEqual(await inWindow(), { vitals: [400, 50], errors: ['retained 400', 'retained 50'], audit: ['kept', 'old', 'old'] });
      // Nothing to prune: nothing goes.
      assert.deepEqual(await store.prune({ vitals: null, errors: null, audit: null, credentials: null }), { vitals: 0, errors: 0, audit: 0, credentials: 0 });
      assert.deepEqual(await store.prune({ vitals: ago(100), errors: ago(100), audit: ago(100), credentials: null }), { vitals: 1, errors: 1, audit: 12_000, credentials: 0 });
      assert.deepEqual(await inWindow(), { vitals: [50], errors: ['retained 50'], audit: ['kept'] });
      assert.deepEqual(await store.latestVitals(DEV1), latest, 'the latest vitals are not history');
    });

    it('the sweep deletes by the days each kind is kept, at start and on request', async () => {
      await store.recordVitals(DEV1, { 'device.system.uptime': 40 }, ago(40));
      await store.recordError(DEV1, errorReport({ message: 'retained 40' }), ago(40));
      await audited(ago(40), 'audit 40');
      // Vitals kept 30 days: both samples go; errors kept 45: the one of 50 days ago goes; audit kept forever.
      const r = startRetention(store, silent, { vitalsDays: 30, errorsDays: 45, auditDays: null, credentialsDays: null, sweepMs: 3_600_000 }, () => new Date(T0));
      await r.sweep();
      assert.deepEqual(await inWindow(), { vitals: [], errors: ['retained 40'], audit: ['audit 40', 'kept'] });
      await r.stop();
      assert.deepEqual(cutoffs({ vitalsDays: 30, errorsDays: 0, auditDays: null, credentialsDays: 7, sweepMs: 1 }, new Date(T0)), { vitals: ago(30), errors: new Date(T0), audit: null, credentials: ago(7) });
    });

    it('deletes credentials that stopped working before the cutoff: expired codes, revoked tokens, expired tokens with no refresh token; keeps the rest', async () => {
      const who = { kind: 'user' as const, id: (await store.createUser('prune@example.com', 'pw-prune')).id };
      const start = clock;
      const revoked = await store.issueToken({ subject: who, clientId: 'particle', scopes: [], ttlSeconds: null });
      await store.revokeToken(revoked.token);
      const expired = await store.issueToken({ subject: who, clientId: 'particle', scopes: [], ttlSeconds: 60 });
      const refreshable = await store.issueToken({ subject: who, clientId: 'particle', scopes: [], ttlSeconds: 60, refresh: true });
      const live = await store.issueToken({ subject: who, clientId: 'particle', scopes: [], ttlSeconds: null });
      await store.createClaimCode({ code: 'old-claim-code-0123456789abcdef', productId: null, claimant: { kind: 'user', id: who.id }, ttlSeconds: 60 });
      clock += 10 * 86_400_000;
      await store.createClaimCode({ code: 'new-claim-code-0123456789abcdef', productId: null, claimant: { kind: 'user', id: who.id }, ttlSeconds: 60 });
      try {
        const n = await store.prune({ vitals: null, errors: null, audit: null, credentials: new Date(clock - 86_400_000) });
        // This store holds other tests' credentials too: at least these three.
        assert.ok(n.credentials >= 3, 'the revoked and the expired token, the old claim code: ' + n.credentials);
        assert.equal(await store.findToken(revoked.token), null);
        assert.equal(await store.findToken(expired.token), null);
        assert.ok(await store.findToken(live.token));
        assert.ok(await store.refreshToken(refreshable.refreshToken!, 60, ['particle']), 'an expired token with a refresh token still refreshes');
        assert.equal(await store.findClaimCode('old-claim-code-0123456789abcdef'), null);
        assert.ok(await store.findClaimCode('new-claim-code-0123456789abcdef'));
      } finally {
        clock = start;
      }
    });
  });

  describe('refresh tokens', () => {
    it('keep a token live (listed, refreshable) for 90 days after its access token expired; then it is neither, and retention deletes it', async () => {
      const who = { kind: 'user' as const, id: (await store.createUser('grace@example.com', 'pw-grace')).id };
      const start = clock;
      const listed = async () => (await store.listTokens(who)).map((t) => t.id);
      const early = await store.issueToken({ subject: who, clientId: 'particle', scopes: [], ttlSeconds: 60, refresh: true });
      const late = await store.issueToken({ subject: who, clientId: 'particle', scopes: [], ttlSeconds: 60, refresh: true });
      const handle = async (t: string) => (await store.findToken(t))!.id;
      const [earlyHandle, lateHandle] = [await handle(early.token), await handle(late.token)];
      try {
        clock += 10 * 86_400_000;
        // Before: an expired access token was left out of the list, while its refresh token still got new ones.
        assert.deepEqual((await listed()).filter((h) => h === earlyHandle || h === lateHandle).sort(), [earlyHandle, lateHandle].sort());
        assert.ok(await store.refreshToken(early.refreshToken!, 60, ['particle']), 'refreshable within the grace');
        clock += 82 * 86_400_000; // 92 days on: 2 days past the grace
        assert.ok(!(await listed()).includes(lateHandle), 'past the grace: not live');
        assert.equal(await store.refreshToken(late.refreshToken!, 60, ['particle']), null, 'past the grace: not refreshable');
        // Before, kept for good: retention deleted only revoked tokens and those with no refresh token.
        await store.prune({ vitals: null, errors: null, audit: null, credentials: new Date(clock - 7 * 86_400_000) });
        assert.ok(await store.findToken(late.token), 'stopped working under 7 days ago: kept');
        clock += 8 * 86_400_000;
        await store.prune({ vitals: null, errors: null, audit: null, credentials: new Date(clock - 7 * 86_400_000) });
        assert.equal(await store.findToken(late.token), null);
      } finally {
        clock = start;
      }
    });
  });

  describe('several connections on one file', () => {
    it('two store instances in one process interleave writes without losing any', async () => {
      const other = await open();
      try {
        const writes: Promise<void>[] = [];
        for (let i = 0; i < 100; i++) {
          writes.push(store.recordVitals(DEV2, { 'device.system.uptime': i }, new Date(T0 + 100_000 + i * 2)));
          writes.push(other.recordVitals(DEV2, { 'device.system.uptime': i }, new Date(T0 + 100_001 + i * 2)));
          writes.push(other.audit({ ...auditOf('twins'), reason: 'twin ' + i }));
        }
        await Promise.all(writes);
        assert.equal((await store.vitalsHistory(DEV2, new Date(T0 + 100_000), new Date(T0 + 200_000))).length, 200);
        assert.equal((await other.auditLog({ actorId: 'twins', limit: 1000 })).length, 100);
        assert.equal((await store.latestVitals(DEV2))?.at.getTime(), T0 + 100_001 + 99 * 2);
      } finally {
        await other.close();
      }
    });

    it('a write waits (busy_timeout) while another process holds the write lock, then succeeds', async () => {
      const child = runChild('lock');
      await child.waitFor('locked');
      // Blocks in SQLite's busy handler until the child commits (about 400 ms), instead of failing with SQLITE_BUSY.
      await store.audit({ ...auditOf('parent'), reason: 'after the lock' });
      assert.equal(await child.exit, 0);
      const [mine] = await store.auditLog({ actorId: 'parent' });
      const [theirs] = await store.auditLog({ actorId: 'lock-holder' });
      assert.ok(theirs && mine && theirs.id < mine.id, 'the child committed first: the parent waited for it');
    });

    it('another process writing through its own store at the same time: every write of both is kept', async () => {
      const child = runChild('write');
      await child.waitFor('ready');
      for (let i = 0; i < 150; i++) await store.recordVitals(DEV2, { 'device.system.uptime': i }, new Date(T0 + 300_000 + i * 2));
      assert.equal(await child.exit, 0);
      assert.equal((await store.vitalsHistory(DEV2, new Date(T0 + 300_000), new Date(T0 + 400_000))).length, 300);
    });

    it('several processes opening a fresh file at once: one applies the migration, all open', async () => {
      const fresh = join(dir, 'race.db');
      const children = [1, 2, 3, 4, 5].map(() => runChild('open', fresh));
      assert.deepEqual(await Promise.all(children.map((c) => c.exit)), [0, 0, 0, 0, 0]);
      const db = raw(fresh);
      assert.deepEqual(db.prepare('SELECT COUNT(*) AS n FROM migrations').get(), { n: MIGRATIONS.length });
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      db.close();
    });

    it('the file passes PRAGMA integrity_check', async () => {
      assert.equal(await store.integrityCheck(), 'ok');
      await store.close();
      const db = raw(file);
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      assert.deepEqual(db.pragma('foreign_key_check'), []);
      db.close();
      store = await open();
    });
  });

  function auditOf(actorId: string) {
    return { at: new Date(T0), actorKind: 'test', actorId, action: 'device.view', resourceKind: 'device', resourceId: DEV2, allowed: true, status: 200, reason: '' };
  }

  /**
   * Another process on the same file. 'lock': a raw connection holds the write
   * lock for 400 ms. 'write': its own store writes 150 vitals reports.
   * 'open': opens a store and closes it (exit code 1 if that fails).
   */
  function runChild(mode: 'lock' | 'write' | 'open', db = file): { waitFor(line: string): Promise<void>; exit: Promise<number | null> } {
    // Written once: a child may still be reading it when the next one starts.
    const script = join(dir, 'child.mjs');
    if (!existsSync(script)) writeFileSync(
      script,
      `
const [mode, file, storeModule, sqliteModule, device, t0] = process.argv.slice(2);
if (mode === 'lock') {
  const { default: Database } = await import(sqliteModule);
  const db = new Database(file);
  db.pragma('busy_timeout = 5000');
  db.exec('BEGIN IMMEDIATE');
  db.prepare("INSERT INTO audit_log (at, actor_kind, actor_id, action, resource_kind, resource_id, allowed, status, reason) VALUES (0, 'test', 'lock-holder', 'x', 'x', 'x', 1, 200, 'held the lock')").run();
  console.log('locked');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 400);
  db.exec('COMMIT');
  db.close();
} else if (mode === 'open') {
  const { openSqliteStore } = await import(storeModule);
  await (await openSqliteStore({ file })).close();
} else {
  const { openSqliteStore } = await import(storeModule);
  const fast = { N: 1024, r: 8, p: 1 };
  const store = await openSqliteStore({ file, passwordCost: fast, deviceSecretCost: fast });
  console.log('ready');
  for (let i = 0; i < 150; i++) await store.recordVitals(device, { 'device.system.uptime': i }, new Date(Number(t0) + 300001 + i * 2));
  await store.close();
}
`,
    );
    const proc = spawn(
      process.execPath,
      ['--import', 'tsx', script, mode, db, join(repoRoot, 'bridge/src/store/sqlite/index.ts'), require.resolve('better-sqlite3'), DEV2, String(T0)],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    const waiters: { line: string; resolve: () => void }[] = [];
    proc.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      for (const w of waiters) if (out.split('\n').includes(w.line)) w.resolve();
    });
    const exit = new Promise<number | null>((res) => proc.on('exit', (code) => res(code)));
    return {
      waitFor: (line) =>
        new Promise<void>((res, rej) => {
          if (out.split('\n').includes(line)) return res();
          waiters.push({ line, resolve: res });
          exit.then((code) => rej(new Error(`child exited (${code}) before printing ${line}`)));
        }),
      exit,
    };
  }
});
