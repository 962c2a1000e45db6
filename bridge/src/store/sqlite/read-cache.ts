/**
 * Answers of the hot reads kept between requests. The operator API asks the
 * same few things on every call (a token by its hash, the user's roles, the
 * device and its product): each is a trip into SQLite, together about 8 µs
 * a call, about 3 µs kept. A kept answer is used only while nothing could
 * have changed it:
 *
 * - every write statement of this connection names the table it writes
 *   (INSERT INTO t, UPDATE t): running it moves that table's generation, and
 *   an answer read from t is stale;
 * - a DELETE can cascade through foreign keys, and a statement we cannot
 *   read (exec, anything else) could touch anything: they move every table;
 * - another connection's commit (another process on the same file) moves
 *   SQLite's PRAGMA data_version, which drops every answer (checked once per
 *   turn of the event loop);
 * - nothing is kept while a transaction is open (it may roll back).
 *
 * So correctness does not rest on each store method remembering what to
 * invalidate: writes are seen where every statement is made. Kept rows are
 * frozen: a caller that changed one would change the next caller's answer.
 */
import type { SqliteDatabase, SqliteStatement } from './connection.js';

/** A read whose answers are kept: the statement's get and all, by their parameters. */
export interface CachedRead<Row> {
  get(...params: (string | number)[]): Readonly<Row> | undefined;
  all(...params: (string | number)[]): readonly Readonly<Row>[];
}

export interface TrackedDatabase {
  /** The connection to build the store on: its write statements report what they write. */
  db: SqliteDatabase;
  /** A SELECT whose answers are kept (its tables are read from its FROM and JOIN clauses). */
  cached<Row>(sql: string): CachedRead<Row>;
}

/** Answers kept per statement at most; past it the statement starts over (a bound, not an LRU: the hot set is small). */
const MAX_KEPT = 10_000;

const WRITE_TARGET = /^\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE(?:\s+OR\s+\w+)?)\s+"?([A-Za-z_]\w*)"?/i;
const READ_TABLES = /\b(?:FROM|JOIN)\s+"?([A-Za-z_]\w*)"?/gi;

export function trackWrites(raw: SqliteDatabase): TrackedDatabase {
  const generation = new Map<string, number>();
  let everything = 0;
  const dataVersion = raw.prepare<{ data_version: number }>('PRAGMA data_version');
  // Asking SQLite costs twice a read by primary key: once per turn of the event loop is enough (a commit
  // elsewhere within one turn is as if our read had come first).
  let version: number | null = null;
  const currentVersion = (): number => {
    if (version === null) {
      version = (dataVersion.get() as { data_version: number }).data_version;
      setImmediate(() => (version = null));
    }
    return version;
  };
  const moved = (table: string | null) => {
    if (table === null) everything++;
    else generation.set(table, (generation.get(table) ?? 0) + 1);
  };

  function watch<Row>(statement: SqliteStatement<Row>, sql: string): SqliteStatement<Row> {
    if (/^\s*(SELECT|WITH|PRAGMA)\b/i.test(sql) && !/\b(INSERT|UPDATE|DELETE|REPLACE)\b/i.test(sql)) return statement;
    const table = /^\s*DELETE\b/i.test(sql) ? null : (WRITE_TARGET.exec(sql)?.[1].toLowerCase() ?? null);
    const { run, get, all } = statement;
    // Moved before running: a statement that fails half way has still maybe written.
    return {
      run: (...p) => (moved(table), run.apply(statement, p)),
      get: (...p) => (moved(table), get.apply(statement, p)),
      all: (...p) => (moved(table), all.apply(statement, p)),
    };
  }

  const db: SqliteDatabase = {
    prepare: <Row>(sql: string) => watch(raw.prepare<Row>(sql), sql),
    transaction: (fn) => raw.transaction(fn),
    pragma: (source, options) => raw.pragma(source, options),
    exec: (sql) => (moved(null), raw.exec(sql)),
    close: () => raw.close(),
    get open() {
      return raw.open;
    },
    get inTransaction() {
      return raw.inTransaction;
    },
  };

  function cached<Row>(sql: string): CachedRead<Row> {
    const tables = [...new Set([...sql.matchAll(READ_TABLES)].map((m) => m[1].toLowerCase()))];
    if (tables.length === 0 || !/^\s*SELECT\b/i.test(sql)) throw new Error('a cached read is a SELECT from named tables: ' + sql);
    const statement = raw.prepare<Row>(sql);
    const kept = new Map<string, { stamp: number; version: number; rows: readonly Readonly<Row>[] }>();
    // Generations only grow, so their sum moves whenever one of them does.
    const stamp = () => {
      let s = everything;
      for (const t of tables) s += generation.get(t) ?? 0;
      return s;
    };
    const read = (params: (string | number)[]): readonly Readonly<Row>[] => {
      // Typed: SQLite may compare the text '1' and the number 1 differently.
      const key = params.map((p) => (typeof p === 'number' ? 'n' : 's') + p).join('\u0000');
      const s = stamp();
      const version = currentVersion();
      const k = kept.get(key);
      if (k && k.stamp === s && k.version === version) return k.rows;
      const rows = Object.freeze(statement.all(...params).map((r) => Object.freeze(r)));
      if (!raw.inTransaction) {
        if (kept.size >= MAX_KEPT) kept.clear();
        kept.set(key, { stamp: s, version, rows });
      }
      return rows;
    };
    return { get: (...params) => read(params)[0], all: (...params) => read(params) };
  }

  return { db, cached };
}
