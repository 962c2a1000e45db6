/**
 * Group commit for the writes devices cause at their own pace (hellos,
 * presence, vitals, error reports): those queued in one turn of the event loop, up to
 * `max`, run in one transaction, so a thousand devices cost one fsync rather
 * than a thousand (each fsync blocks the event loop: better-sqlite3 is
 * synchronous). A write's promise settles once its transaction is on disk,
 * so whoever waits for it (a PUBACK) still means "stored". Each write runs in
 * a savepoint of its own: one that throws (an unknown device) is undone and
 * fails alone; the others commit. Writes run in the order they were queued,
 * so writes whose order matters share this one queue (an error report takes
 * the firmware version its device's hello wrote just before).
 */
import type { SqliteDatabase } from './connection.js';

export interface GroupCommit {
  /** Queues `write`; it runs in the next batch. Resolves with its result once committed. */
  <T>(write: () => T): Promise<T>;
  /** Runs what is queued now (before a read that must see it, and before closing). */
  flush(): void;
}

interface Queued {
  write(): unknown;
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

export function groupCommit(db: SqliteDatabase, max = 256): GroupCommit {
  let queue: Queued[] = [];
  let scheduled = false;
  // Nested in the batch's transaction, better-sqlite3 makes this a savepoint.
  const one = db.transaction((write: () => unknown) => write());
  const batch = db.transaction((items: Queued[]) =>
    items.map((q): { ok: true; v: unknown } | { ok: false; e: unknown } => {
      try {
        return { ok: true, v: one(q.write) };
      } catch (e) {
        // Some errors (a full disk, an I/O error) make SQLite roll the whole transaction back: the
        // writes before are gone too, and the ones after would commit one by one. Fail the batch.
        if (!db.inTransaction) throw e;
        return { ok: false, e };
      }
    }),
  );

  function flush(): void {
    scheduled = false;
    while (queue.length > 0) {
      const items = queue.slice(0, max);
      queue = queue.slice(items.length);
      let outcomes;
      try {
        outcomes = batch.immediate(items);
      } catch (e) {
        // The transaction itself failed (the disk, the lock): nothing of it was stored.
        outcomes = items.map(() => ({ ok: false as const, e }));
      }
      outcomes.forEach((o, i) => (o.ok ? items[i].resolve(o.v) : items[i].reject(o.e)));
    }
  }

  const commit = (<T>(write: () => T): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      queue.push({ write, resolve: resolve as (v: unknown) => void, reject });
      if (queue.length >= max) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    })) as GroupCommit;
  commit.flush = flush;
  return commit;
}
