/**
 * The embedded default store: one SQLite file (WAL, synchronous=FULL) in the
 * bridge's data directory.
 */
import path from 'node:path';
import { DEVICE_SECRET_COST, PASSWORD_COST } from '../secrets.js';
import type { ScryptCost } from '../secrets.js';
import type { Store } from '../store.js';
import { tokenStore, userStore } from './accounts.js';
import { openConnection } from './connection.js';
import type { Ctx } from './context.js';
import { groupCommit } from './group-commit.js';
import { trackWrites } from './read-cache.js';
import { deviceStore } from './devices.js';
import { teamStore } from './teams.js';
import { customerStore } from './customers.js';
import { signinStore } from './signin.js';
import { telemetryStore } from './telemetry.js';
import { groupStore } from './groups.js';
import { clientStore } from './clients.js';
import { integrationStore } from './integrations.js';
import { simStore } from './sims.js';
import { firmwareStore } from './firmware.js';
import { orgStore } from './orgs.js';
import { billingStore } from './billing.js';

export interface SqliteStoreOptions {
  /** The database file, e.g. sqliteFile(dataDir). Created (with its directory) if missing. */
  file: string;
  /** How long a write waits for another process's lock; better-sqlite3's default. */
  busyTimeoutMs?: number;
  /** Epoch milliseconds; tests move it to expire tokens. */
  now?: () => number;
  /** scrypt costs; tests lower them. Each hash records its own cost, so changing them keeps stored hashes valid. */
  passwordCost?: ScryptCost;
  deviceSecretCost?: ScryptCost;
  /** Failures of the store's own background work (the batched audit writes); by default to stderr. */
  onError?: (what: string, e: unknown) => void;
}

/** What the SQLite connection runs with, as SQLite reports it. */
export interface SqlitePragmas {
  journalMode: string;
  /** 2 = FULL. */
  synchronous: number;
  /** 1 = on. */
  foreignKeys: number;
  busyTimeoutMs: number;
}

/** The Store, plus what only an SQLite file has: for health checks and tests. */
export interface SqliteStore extends Store {
  readonly file: string;
  pragmas(): Promise<SqlitePragmas>;
  /** PRAGMA integrity_check: 'ok', or SQLite's list of problems joined by newlines. Reads the whole file. */
  integrityCheck(): Promise<string>;
}

/** The one database file of a data directory. */
export function sqliteFile(dataDir: string): string {
  return path.join(dataDir, 'flotilla.db');
}

export async function openSqliteStore(o: SqliteStoreOptions): Promise<SqliteStore> {
  const opened = await openConnection({ file: o.file, busyTimeoutMs: o.busyTimeoutMs ?? 5000 });
  const { dataSource } = opened;
  const { db, cached } = trackWrites(opened.db);
  const ctx: Ctx = {
    db,
    cached,
    commit: groupCommit(db),
    now: o.now ?? Date.now,
    passwordCost: o.passwordCost ?? PASSWORD_COST,
    deviceSecretCost: o.deviceSecretCost ?? DEVICE_SECRET_COST,
    onError: o.onError ?? ((what, e) => console.error('store: ' + what + ': ' + (e instanceof Error ? e.message : String(e)))),
  };
  let closing: Promise<void> | null = null;
  const telemetry = telemetryStore(ctx);
  return {
    ...userStore(ctx),
    ...tokenStore(ctx),
    ...teamStore(ctx),
    ...deviceStore(ctx),
    ...telemetry,
    ...customerStore(ctx),
    ...signinStore(ctx),
    ...groupStore(ctx),
    ...clientStore(ctx),
    ...integrationStore(ctx),
    ...simStore(ctx),
    ...firmwareStore(ctx),
    ...orgStore(ctx),
    ...billingStore(ctx),
    file: o.file,
    async pragmas() {
      return {
        journalMode: String(db.pragma('journal_mode', { simple: true })),
        synchronous: Number(db.pragma('synchronous', { simple: true })),
        foreignKeys: Number(db.pragma('foreign_keys', { simple: true })),
        busyTimeoutMs: Number(db.pragma('busy_timeout', { simple: true })),
      };
    },
    async integrityCheck() {
      const rows = db.pragma('integrity_check') as { integrity_check: string }[];
      return rows.map((r) => r.integrity_check).join('\n');
    },
    close() {
      // What is batched goes to disk first: the group commit's queue, the audit entries.
      if (!closing && dataSource.isInitialized) {
        ctx.commit.flush();
        telemetry.stopAudit();
      }
      // Closing the last connection checkpoints the WAL into the main file.
      closing ??= dataSource.isInitialized ? dataSource.destroy() : Promise.resolve();
      return closing;
    },
  };
}
