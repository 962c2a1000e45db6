/**
 * The SQLite store's group commit (bridge/src/store/sqlite/group-commit.ts)
 * on a real database file: writes queued in one turn of the event loop share
 * one transaction, each in a savepoint, so one that fails is undone and fails
 * alone; results come back in order; flush() writes now; a transaction that
 * cannot commit fails every write of it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { groupCommit } from '../../bridge/src/store/sqlite/group-commit.js';
import type { SqliteDatabase } from '../../bridge/src/store/sqlite/connection.js';

const require = createRequire(import.meta.url);
const Database = require('better-sqlite3') as new (file: string) => SqliteDatabase & { exec(sql: string): void; close(): void };

describe('SQLite group commit', () => {
  let dir: string;
  let db: ReturnType<typeof open>;
  const open = () => new Database(join(dir, 'g.db'));
  const rows = () => (db.prepare('SELECT x FROM t ORDER BY rowid').all() as { x: number }[]).map((r) => r.x);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-gc-'));
    db = open();
    db.exec('CREATE TABLE t (x INTEGER NOT NULL)');
  });
  afterEach(() => {
    try {
      db.close();
    } catch {
      // closed by the test
    }
    rmSync(dir, { recursive: true, force: true });
  });

  /** `db`, counting the transactions group commit opens (each batch is one BEGIN IMMEDIATE). */
  function counted(): { db: SqliteDatabase; batches: () => number } {
    let n = 0;
    const proxy = new Proxy(db, {
      get(target, key) {
        if (key !== 'transaction') return Reflect.get(target, key, target) as unknown;
        return (fn: (...a: unknown[]) => unknown) => {
          const t = target.transaction(fn);
          return Object.assign((...a: unknown[]) => t(...a), { immediate: (...a: unknown[]) => (n++, t.immediate(...a)) });
        };
      },
    });
    return { db: proxy as SqliteDatabase, batches: () => n };
  }

  it('runs the writes of one turn in one transaction; one that throws is undone and fails alone', async () => {
    const c = counted();
    const commit = groupCommit(c.db);
    const insert = db.prepare('INSERT INTO t (x) VALUES (?)');
    const inTransaction: boolean[] = [];
    const results = await Promise.allSettled([
      commit(() => (inTransaction.push(db.inTransaction), insert.run(1).changes)),
      commit(() => {
        insert.run(2);
        throw new Error('second write refused');
      }),
      commit(() => (inTransaction.push(db.inTransaction), 'third')),
      commit(() => insert.run(4).changes),
    ]);
    assert.deepEqual(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)), [1, 'second write refused', 'third', 1]);
    assert.deepEqual(rows(), [1, 4], 'the failed write left nothing');
    assert.deepEqual(inTransaction, [true, true]);
    assert.equal(c.batches(), 1, 'four writes, one transaction');
    assert.equal(db.inTransaction, false);
  });

  it('splits a long queue into batches of at most `max`, in order', async () => {
    const c = counted();
    const commit = groupCommit(c.db, 3);
    const insert = db.prepare('INSERT INTO t (x) VALUES (?)');
    const got = await Promise.all(Array.from({ length: 8 }, (_, i) => commit(() => (insert.run(i), i))));
    assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(rows(), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(c.batches(), 3);
  });

  it('a write that ends the whole transaction (as SQLite does on a full disk) fails the batch: nothing of it is stored', async () => {
    const commit = groupCommit(db);
    const insert = db.prepare('INSERT INTO t (x) VALUES (?)');
    const results = await Promise.allSettled([
      commit(() => insert.run(1)),
      commit(() => db.prepare('ROLLBACK').run()),
      commit(() => insert.run(3)),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
    assert.deepEqual(rows(), [], 'neither the write before nor the one after');
  });

  it('flush() writes what is queued at once', () => {
    const commit = groupCommit(db);
    void commit(() => db.prepare('INSERT INTO t (x) VALUES (7)').run());
    assert.deepEqual(rows(), [], 'queued, not written yet');
    commit.flush();
    assert.deepEqual(rows(), [7]);
  });

  it('a batch that cannot begin (the connection closed) fails every write in it', async () => {
    const commit = groupCommit(db);
    const a = commit(() => 1);
    const b = commit(() => 2);
    db.close();
    const results = await Promise.allSettled([a, b]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
    assert.match(String((results[0] as PromiseRejectedResult).reason), /database connection is not open/);
  });
});
