/**
 * Opening the SQLite file: typeorm's DataSource over better-sqlite3, the
 * pragmas on the connection, and the migrations.
 *
 * Pragmas (shared/research/reliability.md §5): better-sqlite3 is built with
 * WAL's default synchronous=NORMAL, which can lose the last commits on power
 * loss; the broker acknowledges a QoS 1 message once it is written, so a
 * commit must be on disk: synchronous=FULL. typeorm leaves WAL off unless
 * asked; we ask in `prepareDatabase`, which typeorm runs on the connection
 * before anything else, and check the result instead of trusting it.
 *
 * Migrations run on every open, but not through typeorm's `migrationsRun`:
 * typeorm reads which migrations are applied before it takes any lock, so two
 * processes opening a fresh file together both try to create the tables (one
 * in four failed with "table already exists" when we tried). We take the
 * write lock first (BEGIN IMMEDIATE) and let typeorm run the pending
 * migrations inside it; a second process waits for the lock (busy_timeout)
 * and then finds nothing pending.
 */
import { closeSync, existsSync, openSync } from 'node:fs';
import { DataSource } from 'typeorm';
import { ENTITIES, MIGRATIONS, MIGRATIONS_TABLE } from '../schema/index.js';

/** What the store uses of a better-sqlite3 Database (the package ships no types and we add none). */
export interface SqliteDatabase {
  prepare<Row = unknown>(sql: string): SqliteStatement<Row>;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): SqliteTransaction<A, R>;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  exec(sql: string): void;
  close(): void;
  readonly open: boolean;
  readonly inTransaction: boolean;
}

export interface SqliteStatement<Row> {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  get(...params: unknown[]): Row | undefined;
  all(...params: unknown[]): Row[];
}

export interface SqliteTransaction<A extends unknown[], R> {
  (...args: A): R;
  /** BEGIN IMMEDIATE: takes the write lock first (waiting up to busy_timeout), so a read-then-write cannot fail half way with SQLITE_BUSY. */
  immediate(...args: A): R;
}

export interface ConnectionOptions {
  /** The database file; its directory is created if missing. */
  file: string;
  /** How long a write waits for another connection's lock before SQLITE_BUSY. */
  busyTimeoutMs: number;
}

function pragmas(busyTimeoutMs: number): (db: SqliteDatabase) => void {
  return (db) => {
    try {
      // First, so that switching to WAL also waits for other connections.
      db.pragma(`busy_timeout = ${Math.floor(busyTimeoutMs)}`);
      // Persistent in the file; answers the mode in effect (e.g. 'memory' for :memory:).
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new Error(`SQLite refused WAL mode (journal_mode is ${String(mode)})`);
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
    } catch (e) {
      // typeorm has not taken the connection yet, so it would not close it.
      db.close();
      throw e;
    }
  };
}

/**
 * Runs the pending migrations under the write lock, as SQLite's documented
 * procedure for schema changes: foreign keys off (a table rebuilt by a later
 * migration must not cascade deletes), one transaction, foreign_key_check
 * before COMMIT, foreign keys back on. typeorm's own transaction is off
 * ('none') because ours is open.
 */
async function migrate(dataSource: DataSource, db: SqliteDatabase): Promise<void> {
  db.pragma('foreign_keys = OFF');
  try {
    db.exec('BEGIN IMMEDIATE');
    try {
      await dataSource.runMigrations({ transaction: 'none' });
      const broken = db.pragma('foreign_key_check') as unknown[];
      if (broken.length > 0) throw new Error('migrations left rows that break foreign keys: ' + JSON.stringify(broken.slice(0, 5)));
      db.exec('COMMIT');
    } catch (e) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw e;
    }
  } finally {
    db.pragma('foreign_keys = ON');
  }
}

/** Opens the file, sets the pragmas and runs pending migrations (each once, recorded in `migrations`). */
export async function openConnection(o: ConnectionOptions): Promise<{ dataSource: DataSource; db: SqliteDatabase }> {
  // Password, token and secret hashes live here: a new database is its owner's alone (SQLite gives its
  // -wal and -shm files the database file's mode), not the umask's 0644.
  if (o.file !== ':memory:' && !existsSync(o.file)) closeSync(openSync(o.file, 'a', 0o600));
  const dataSource = new DataSource({
    type: 'better-sqlite3',
    database: o.file,
    timeout: o.busyTimeoutMs,
    prepareDatabase: pragmas(o.busyTimeoutMs),
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: MIGRATIONS_TABLE,
    // Run by migrate() below, under the write lock; all pending ones in one transaction.
    migrationsRun: false,
    synchronize: false,
    logging: false,
  });
  await dataSource.initialize();
  const db = (dataSource.driver as unknown as { databaseConnection: SqliteDatabase }).databaseConnection;
  try {
    await migrate(dataSource, db);
    // Foreign keys were off during the migrations and back on after; make sure every pragma holds.
    const got = {
      journal_mode: db.pragma('journal_mode', { simple: true }),
      synchronous: db.pragma('synchronous', { simple: true }),
      foreign_keys: db.pragma('foreign_keys', { simple: true }),
    };
    if (got.journal_mode !== 'wal' || got.synchronous !== 2 || got.foreign_keys !== 1)
      throw new Error('SQLite pragmas did not hold: ' + JSON.stringify(got));
  } catch (e) {
    await dataSource.destroy();
    throw e;
  }
  return { dataSource, db };
}
