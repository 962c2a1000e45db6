/**
 * What each part of the SQLite store works with, and the small conversions
 * they share.
 *
 * Why raw prepared statements on better-sqlite3 rather than typeorm's
 * repositories: typeorm's SQLite driver has ONE connection and ONE shared
 * query runner, and its transactions are async. Two concurrent
 * `transaction()` calls nest as savepoints of each other, any other query
 * lands inside whichever transaction is open, and the write lock is held
 * across event-loop turns (so a second connection in the same process waits
 * on a lock that cannot be released). A better-sqlite3 transaction runs
 * synchronously from BEGIN to COMMIT: atomic, never interleaved, and the lock
 * is never held across an await. typeorm keeps what it is good at here: the
 * entities, the migrations and the connection.
 *
 * SQL is written in the subset SQLite and PostgreSQL share (ON CONFLICT ... DO
 * UPDATE, INSERT ... SELECT, CAST AS TEXT, double-quoted identifiers), so a
 * PostgreSQL port changes placeholders (? → $n), booleans (0/1 → false/true)
 * and makes the calls async.
 */
import { UNSAFE_IN_TEXT } from '../../text.js';
import { hashSecret, type ScryptCost } from '../secrets.js';
import { StoreError } from '../store.js';
import type { ProductId } from '../store.js';
import type { SqliteDatabase } from './connection.js';
import type { GroupCommit } from './group-commit.js';
import type { CachedRead } from './read-cache.js';

export interface Ctx {
  db: SqliteDatabase;
  /** A SELECT whose answers are kept until a write could change them (read-cache.ts): for the reads every request makes. */
  cached<Row>(sql: string): CachedRead<Row>;
  /** Group commit for the writes devices cause at their own pace (hellos, presence, vitals, error reports). */
  commit: GroupCommit;
  /** Epoch milliseconds, for created_at, token expiry and revocation. */
  now(): number;
  passwordCost: ScryptCost;
  deviceSecretCost: ScryptCost;
  /** A failure of work the store does on its own time (a batched write from a timer): nobody else would hear of it. */
  onError(what: string, e: unknown): void;
}

type Constraint = 'unique' | 'foreignKey' | 'check' | 'notNull';

/** Which constraint a better-sqlite3 error broke, from its extended result code. */
function constraintOf(e: unknown): Constraint | null {
  const code = e !== null && typeof e === 'object' ? (e as { code?: unknown }).code : undefined;
  switch (code) {
    case 'SQLITE_CONSTRAINT_UNIQUE':
    case 'SQLITE_CONSTRAINT_PRIMARYKEY':
      return 'unique';
    case 'SQLITE_CONSTRAINT_FOREIGNKEY':
      return 'foreignKey';
    case 'SQLITE_CONSTRAINT_CHECK':
      return 'check';
    case 'SQLITE_CONSTRAINT_NOTNULL':
      return 'notNull';
    default:
      return null;
  }
}

/**
 * Runs `fn`, turning the constraint violations it names into StoreErrors: a
 * unique key into `conflict`, a foreign key into `not_found`, a check into
 * `invalid`. Anything else is a bug or an I/O error and is thrown as is.
 */
export function refusing<T>(messages: { unique?: string; foreignKey?: string; check?: string }, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const c = constraintOf(e);
    if (c === 'unique' && messages.unique) throw new StoreError('conflict', messages.unique);
    if (c === 'foreignKey' && messages.foreignKey) throw new StoreError('not_found', messages.foreignKey);
    if (c === 'check' && messages.check) throw new StoreError('invalid', messages.check);
    throw e;
  }
}

export function toDate(ms: number): Date;
export function toDate(ms: number | null): Date | null;
export function toDate(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms);
}

/** Epoch ms of a Date the caller passed; refuses Invalid Date, which would store NaN. */
export function msOf(d: Date, what: string): number {
  const t = d instanceof Date ? d.getTime() : NaN;
  if (!Number.isFinite(t)) throw new StoreError('invalid', `${what} is not a valid date`);
  return t;
}

/**
 * A person as a refusal names them: by username (an id means nothing to whoever reads the message).
 * The id when there is no such user: the message is about a row that names one.
 */
export function usernameOf(db: Ctx['db']): (userId: string) => string {
  const byId = db.prepare<{ username: string }>('SELECT username FROM users WHERE id = ?');
  return (userId) => byId.get(userId)?.username ?? userId;
}

export function parseJson<T>(text: string): T {
  return JSON.parse(text) as T;
}

/** A trimmed name of 1..max characters. */
export function cleanName(s: unknown, what: string, max = 255): string {
  const v = typeof s === 'string' ? s.trim() : '';
  if (v.length === 0 || v.length > max) throw new StoreError('invalid', `${what} must have 1 to ${max} characters`);
  if (UNSAFE_IN_TEXT.test(v)) throw new StoreError('invalid', `${what} may not have control, zero-width or bidirectional-override characters`);
  return v;
}

/** The integer behind a ProductId (a number or its decimal string). */
export function productKey(id: ProductId): number {
  const n = typeof id === 'number' ? id : typeof id === 'string' && /^[0-9]{1,15}$/.test(id) ? Number(id) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new StoreError('invalid', `product id ${JSON.stringify(id)} is not a positive integer`);
  return n;
}

/**
 * A new password's hash (a user's or a customer's); invalid for anything but
 * a non-empty string. Hashing takes a while (on the thread pool): call it
 * before any transaction, so no lock is held meanwhile.
 */
export function passwordHash(ctx: Pick<Ctx, 'passwordCost'>, password: unknown): Promise<string> {
  if (typeof password !== 'string' || password.length === 0) throw new StoreError('invalid', 'password must not be empty');
  return hashSecret(password, ctx.passwordCost);
}
