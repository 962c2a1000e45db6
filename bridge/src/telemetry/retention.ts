/**
 * How long the bridge keeps what grows with time: vitals history, error
 * reports, the audit log, credentials that no longer work. A sweep deletes what is older than its retention,
 * at start and then every `sweepMs`; without one, a fleet fills the disk.
 */
import type { Logger } from '../mqtt/deps.js';
import type { PruneCutoffs, TelemetryStore } from '../store/store.js';

export interface RetentionOptions {
  /** Days of vitals history kept (the latest vitals of each device always stay); null: all. */
  vitalsDays: number | null;
  /** Days of error reports kept; null: all. */
  errorsDays: number | null;
  /** Days of audit log kept; null: all. */
  auditDays: number | null;
  /** Days a credential is kept after it stopped working (claim and authorization codes expired, tokens revoked or expired for good); null: all. */
  credentialsDays: number | null;
  /** How often the sweep runs (ms). */
  sweepMs: number;
}

export const defaultRetention: RetentionOptions = { vitalsDays: 30, errorsDays: 90, auditDays: 365, credentialsDays: 7, sweepMs: 3_600_000 };

const DAY_MS = 86_400_000;

/** What a sweep at `now` deletes: rows older than these. */
export function cutoffs(o: RetentionOptions, now: Date): PruneCutoffs {
  const before = (days: number | null) => (days === null ? null : new Date(now.getTime() - days * DAY_MS));
  return { vitals: before(o.vitalsDays), errors: before(o.errorsDays), audit: before(o.auditDays), credentials: before(o.credentialsDays) };
}

export interface Retention {
  /** Runs a sweep now (after the one under way, if any). */
  sweep(): Promise<void>;
  /** Stops the schedule; resolves when no sweep is running. */
  stop(): Promise<void>;
}

export function startRetention(store: Pick<TelemetryStore, 'prune'>, log: Logger, o: RetentionOptions, now: () => Date = () => new Date()): Retention {
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const sweep = (): Promise<void> =>
    (running = running.then(async () => {
      if (stopped) return;
      try {
        const n = await store.prune(cutoffs(o, now()));
        if (n.vitals + n.errors + n.audit + n.credentials > 0) log.info({ deleted: n }, 'retention: old rows deleted');
      } catch (e) {
        log.error({ err: e }, 'retention: sweep failed');
      }
    }));
  const timer = setInterval(() => void sweep(), o.sweepMs);
  timer.unref();
  void sweep();
  return {
    sweep,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
