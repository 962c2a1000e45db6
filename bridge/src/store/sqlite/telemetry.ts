/**
 * Vitals, error reports and the audit log. recordVitals, recordError and
 * audit run inside aedes' authorizePublish, before the PUBACK: each is one
 * prepared statement or one synchronous transaction, durable when it returns.
 */
import type { ErrorReport, ErrorSource, SampleValues } from '@flotilla/protocol';
import { isDay, REFRESH_GRACE_MS, StoreError } from '../store.js';
import type { AuditFilter, AuditRecord, BillingStore, DeviceErrorReport, ErrorGroup, ProductId, PruneCounts, PruneCutoffs, TelemetryStore, UsageCount, UsageDay, VitalsSample } from '../store.js';
import { msOf, parseJson, productKey, refusing } from './context.js';
import type { Ctx } from './context.js';
import type { SqliteStatement } from './connection.js';

interface SampleRaw {
  metric_values: string;
  at: number;
}

interface ErrorGroupRaw {
  source: ErrorSource;
  name: string;
  message: string;
  firmware_version: number | null;
  count: number;
  devices: number;
  last_at: number;
}

type DeviceErrorRaw = ErrorReport & { at: number; firmware_version: number | null };

interface AuditRaw {
  id: number;
  at: number;
  actor_kind: string;
  actor_id: string;
  action: string;
  resource_kind: string;
  resource_id: string;
  allowed: number;
  status: number;
  reason: string;
}

const DEFAULT_AUDIT_LIMIT = 100;
const MAX_ROWS = 10_000;

function sample(r: SampleRaw): VitalsSample {
  return { at: new Date(r.at), values: parseJson<SampleValues>(r.metric_values) };
}

function limitOf(limit: number | undefined, dflt: number): number {
  return limit === undefined ? dflt : Math.max(1, Math.min(MAX_ROWS, Math.floor(limit) || dflt));
}

/** Audit entries are written in batches: at most this long after the decision, or this many at once. */
const AUDIT_BATCH_MS = 20;
const AUDIT_BATCH_MAX = 512;
/** While the audit log cannot be written (a full disk, another process's lock): entries kept to write later, and how often that is tried. */
const AUDIT_HELD_MAX = 100_000;
const AUDIT_RETRY_MS = 1000;

/** Rows deleted per statement when pruning: each batch is short, and other work runs between batches. */
const PRUNE_BATCH = 5000;

/** What an audit row keeps of a resource id and of a reason (characters). */
const AUDIT_ID_MAX = 200;
const AUDIT_REASON_MAX = 500;

function clip(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max - 1) + '…';
}

export function telemetryStore(ctx: Ctx): TelemetryStore & Pick<BillingStore, 'usageOfProducts'> & { flushAudit(): void; stopAudit(): void } {
  const { db } = ctx;
  // A report older than the stored one (handled late) goes to the history only.
  const upsertLatest = db.prepare(
    `INSERT INTO vitals_latest (device_id, metric_values, updated_at) VALUES (?, ?, ?)
     ON CONFLICT (device_id) DO UPDATE SET metric_values = excluded.metric_values, updated_at = excluded.updated_at
     WHERE excluded.updated_at >= vitals_latest.updated_at`,
  );
  const appendHistory = db.prepare('INSERT INTO vitals_history (device_id, metric_values, at) VALUES (?, ?, ?)');
  const pruneFrom = (table: string) => db.prepare(`DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE at < ? LIMIT ?)`);
  const pruneBatch = { vitals: pruneFrom('vitals_history'), errors: pruneFrom('error_reports'), audit: pruneFrom('audit_log') };
  // Credentials that no longer work: codes expired, tokens revoked or expired with nothing left to refresh them.
  const pruneCredentials = [
    db.prepare('DELETE FROM claim_codes WHERE code_hash IN (SELECT code_hash FROM claim_codes WHERE expires_at < @before LIMIT @limit)'),
    db.prepare('DELETE FROM oauth_codes WHERE code_hash IN (SELECT code_hash FROM oauth_codes WHERE expires_at < @before LIMIT @limit)'),
    db.prepare(
      `DELETE FROM access_tokens WHERE token_hash IN (SELECT token_hash FROM access_tokens
       WHERE revoked_at < @before OR (revoked_at IS NULL AND expires_at < @before - (CASE WHEN refresh_token_hash IS NULL THEN 0 ELSE @grace END)) LIMIT @limit)`,
    ),
  ];
  const latest = db.prepare<SampleRaw>('SELECT metric_values, updated_at AS at FROM vitals_latest WHERE device_id = ?');
  const latestOfProduct = db.prepare<SampleRaw & { device_id: string }>(
    'SELECT v.device_id, v.metric_values, v.updated_at AS at FROM vitals_latest v JOIN devices d ON d.id = v.device_id WHERE d.product_id = ?',
  );
  const history = db.prepare<SampleRaw>(
    'SELECT metric_values, at FROM vitals_history WHERE device_id = ? AND at >= ? AND at < ? ORDER BY at DESC, id DESC LIMIT ?',
  );
  // The product and firmware version are the device's at the time of the report, copied in the same statement.
  const insertError = db.prepare(
    `INSERT INTO error_reports (device_id, product_id, firmware_version, source, name, message, stack, count, uptime, at)
     SELECT id, product_id, COALESCE(?, firmware_version), ?, ?, ?, ?, ?, ?, ? FROM devices WHERE id = ?`,
  );
  const errorGroups = db.prepare<ErrorGroupRaw>(
    `SELECT source, name, message, firmware_version, SUM(count) AS count, COUNT(DISTINCT device_id) AS devices, MAX(at) AS last_at
     FROM error_reports WHERE product_id = ?
     GROUP BY source, name, message, firmware_version
     ORDER BY count DESC, last_at DESC`,
  );
  // Uses idx_error_reports_device_at.
  const errorsOfDevice = db.prepare<DeviceErrorRaw>(
    'SELECT at, source, name, message, stack, count, uptime, firmware_version FROM error_reports WHERE device_id = ? AND at >= ? AND at <= ? ORDER BY at DESC, id DESC LIMIT ?',
  );
  const insertAudit = db.prepare(
    `INSERT INTO audit_log (at, actor_kind, actor_id, action, resource_kind, resource_id, allowed, status, reason)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );

  // auditLog's WHERE depends on which filters are given: one prepared statement per combination, made on first use.
  const auditQueries = new Map<string, SqliteStatement<AuditRaw>>();
  function auditQuery(where: string[]): SqliteStatement<AuditRaw> {
    const sql = `SELECT * FROM audit_log${where.length ? ' WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    let q = auditQueries.get(sql);
    if (!q) auditQueries.set(sql, (q = db.prepare<AuditRaw>(sql)));
    return q;
  }

  const addUsage = db.prepare(
    `INSERT INTO usage_daily (product_id, day, messages, bytes) VALUES (?, ?, ?, ?)
     ON CONFLICT (product_id, day) DO UPDATE SET messages = usage_daily.messages + excluded.messages, bytes = usage_daily.bytes + excluded.bytes`,
  );
  const addDeviceDay = db.prepare('INSERT INTO device_days (product_id, day, device_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
  const addDataOps = db.prepare(
    `INSERT INTO data_ops_daily (product_id, day, operations) VALUES (?, ?, ?)
     ON CONFLICT (product_id, day) DO UPDATE SET operations = data_ops_daily.operations + excluded.operations`,
  );
  // One meter per table; the usage view sums each over the products asked for, per day.
  const METERS = {
    traffic: 'SELECT day, SUM(messages) AS a, SUM(bytes) AS b FROM usage_daily',
    devices: 'SELECT day, COUNT(DISTINCT device_id) AS a, 0 AS b FROM device_days',
    dataOps: 'SELECT day, SUM(operations) AS a, 0 AS b FROM data_ops_daily',
    sim: 'SELECT day, SUM(bytes) AS a, 0 AS b FROM sim_data_daily',
  } as const;
  function usageOf(ids: readonly number[], from: string, to: string): UsageDay[] {
    const days = new Map<string, UsageDay>();
    if (ids.length === 0) return [];
    const where = ` WHERE product_id IN (${ids.map(() => '?').join(',')}) AND day >= ? AND day <= ? GROUP BY day`;
    for (const [meter, select] of Object.entries(METERS) as [keyof typeof METERS, string][]) {
      for (const r of db.prepare<{ day: string; a: number; b: number }>(select + where).all(...ids, from, to)) {
        let d = days.get(r.day);
        if (!d) days.set(r.day, (d = { day: r.day, devices: 0, messages: 0, bytes: 0, dataOps: 0, simBytes: 0 }));
        if (meter === 'traffic') {
          d.messages = Number(r.a);
          d.bytes = Number(r.b);
        } else if (meter === 'devices') d.devices = Number(r.a);
        else if (meter === 'dataOps') d.dataOps = Number(r.a);
        else d.simBytes = Number(r.a);
      }
    }
    return [...days.values()].sort((x, y) => (x.day < y.day ? -1 : x.day > y.day ? 1 : 0));
  }
  function dayRange(from: string, to: string): void {
    if (!isDay(from) || !isDay(to)) throw new StoreError('invalid', 'dates are YYYY-MM-DD');
  }
  // Rows of products deleted since the counts were taken are skipped, not an error.
  const productExists = db.prepare<{ one: number }>('SELECT 1 AS one FROM products WHERE id = ?');
  const recordUsage = db.transaction((rows: readonly UsageCount[]) => {
    for (const r of rows) {
      const p = productKey(r.productId);
      if (!isDay(r.day)) throw new StoreError('invalid', `day ${JSON.stringify(r.day)} is not YYYY-MM-DD`);
      if (!productExists.get(p)) continue;
      const messages = Math.max(0, Math.floor(r.messages));
      const bytes = Math.max(0, Math.floor(r.bytes));
      // A row of data operations alone (events sent to devices) is no device traffic.
      if (messages > 0 || bytes > 0 || r.devices.length > 0) addUsage.run(p, r.day, messages, bytes);
      for (const d of r.devices) addDeviceDay.run(p, r.day, d);
      const ops = Math.max(0, Math.floor(r.dataOps ?? 0));
      if (ops > 0) addDataOps.run(p, r.day, ops);
    }
  });

  let pendingAudit: unknown[][] = [];
  let auditTimer: NodeJS.Timeout | null = null;
  /** Why the last write of the audit log failed; null once one succeeds. */
  let auditFailure: unknown = null;
  /** Closed (stopAudit): nothing more is held or retried. */
  let auditStopped = false;
  const writeAudit = db.transaction((rows: unknown[][]) => {
    for (const r of rows) insertAudit.run(...r);
  });
  function flushAudit(): void {
    if (auditTimer) clearTimeout(auditTimer);
    auditTimer = null;
    if (pendingAudit.length === 0 || auditStopped) return;
    const rows = pendingAudit;
    pendingAudit = [];
    // Entries wait up to AUDIT_BATCH_MS in memory, so a crash loses the last ones whatever the disk
    // does: the fsync of synchronous=FULL (about 2 ms a batch, the event loop blocked) bought nothing
    // for them. NORMAL commits to the WAL without it; the next FULL commit syncs them with its own.
    try {
      db.pragma('synchronous = NORMAL');
      try {
        writeAudit.immediate(rows);
      } finally {
        db.pragma('synchronous = FULL');
      }
      auditFailure = null;
    } catch (e) {
      // Called from a timer: an error thrown here ended the process (a full disk, a lock held by another
      // process). The entries wait and the write is tried again; audit() refuses more past AUDIT_HELD_MAX.
      if (auditFailure === null) ctx.onError('audit log not written; kept in memory and tried again every ' + AUDIT_RETRY_MS + ' ms', e);
      auditFailure = e;
      pendingAudit = rows.concat(pendingAudit);
      auditTimer = setTimeout(flushAudit, AUDIT_RETRY_MS);
      auditTimer.unref();
    }
  }

  return {
    async recordUsage(rows) {
      recordUsage.immediate(rows);
    },

    async usage(productId, from, to) {
      dayRange(from, to);
      return usageOf([productKey(productId)], from, to);
    },

    async usageOfProducts(productIds: readonly ProductId[], from, to) {
      dayRange(from, to);
      if (!Array.isArray(productIds)) throw new StoreError('invalid', 'product ids must be a list');
      // SQLite binds at most 32766 parameters; an org with more products than that is not one this store serves.
      if (productIds.length > 30000) throw new StoreError('invalid', 'at most 30000 products at once');
      return usageOf([...new Set(productIds.map(productKey))], from, to);
    },

    async recordVitals(deviceId, values, at) {
      if (values === null || typeof values !== 'object' || Array.isArray(values)) throw new StoreError('invalid', 'vitals must be an object');
      const t = msOf(at, 'at');
      const json = JSON.stringify(values);
      // Group commit: the PUBACK waiting for this waits for the batch's transaction.
      await ctx.commit(() =>
        refusing({ foreignKey: `no device ${deviceId}` }, () => {
          upsertLatest.run(deviceId, json, t);
          appendHistory.run(deviceId, json, t);
        }),
      );
    },

    async latestVitals(deviceId) {
      ctx.commit.flush();
      const r = latest.get(deviceId);
      return r ? sample(r) : null;
    },

    async latestVitalsOfProduct(productId) {
      ctx.commit.flush();
      return new Map(latestOfProduct.all(productKey(productId)).map((r) => [r.device_id, sample(r)]));
    },

    async vitalsHistory(deviceId, from, to, limit) {
      ctx.commit.flush();
      // The newest of the range when it holds more than the limit (read newest first, answered oldest first).
      return history.all(deviceId, msOf(from, 'from'), msOf(to, 'to'), limitOf(limit, MAX_ROWS)).map(sample).reverse();
    },

    async recordError(deviceId, report, at, firmwareVersion = null) {
      const t = msOf(at, 'at');
      const count = Number.isInteger(report.count) && report.count > 0 ? report.count : 1;
      const uptime = Number.isFinite(report.uptime) ? Math.floor(report.uptime) : 0;
      // In the group commit's queue, behind the device's hello: the report takes the firmware version that hello wrote.
      await ctx.commit(() => {
        const changes = insertError.run(firmwareVersion, report.source, report.name, report.message, report.stack, count, uptime, t, deviceId).changes;
        if (changes === 0) throw new StoreError('not_found', `no device ${deviceId}`);
      });
    },

    async prune(before) {
      flushAudit();
      ctx.commit.flush();
      const counts: PruneCounts = { vitals: 0, errors: 0, audit: 0, credentials: 0 };
      const inBatches = async (key: keyof PruneCutoffs, run: () => number) => {
        for (;;) {
          const n = run();
          counts[key] += n;
          if (n < PRUNE_BATCH) break;
          await new Promise((r) => setImmediate(r));
        }
      };
      for (const key of ['vitals', 'errors', 'audit'] as const) {
        const cutoff = before[key];
        if (cutoff !== null) await inBatches(key, () => pruneBatch[key].run(msOf(cutoff, key), PRUNE_BATCH).changes);
      }
      if (before.credentials !== null) {
        const named = { before: msOf(before.credentials, 'credentials'), limit: PRUNE_BATCH, grace: REFRESH_GRACE_MS };
        for (const statement of pruneCredentials) await inBatches('credentials', () => statement.run(named).changes);
      }
      return counts;
    },

    async errorsByProduct(productId) {
      ctx.commit.flush();
      return errorGroups.all(productKey(productId)).map(
        (r): ErrorGroup => ({
          source: r.source,
          name: r.name,
          message: r.message,
          firmwareVersion: r.firmware_version,
          count: Number(r.count),
          devices: Number(r.devices),
          lastAt: new Date(Number(r.last_at)),
        }),
      );
    },

    async deviceErrors(deviceId, from, to, limit) {
      ctx.commit.flush();
      return errorsOfDevice.all(deviceId, msOf(from, 'from'), msOf(to, 'to'), limitOf(limit, MAX_ROWS)).map(
        (r): DeviceErrorReport => ({
          at: new Date(Number(r.at)), source: r.source, name: r.name, message: r.message, stack: r.stack, count: r.count, uptime: r.uptime, firmwareVersion: r.firmware_version,
        }),
      );
    },

    async audit(e) {
      // Batched: one transaction (one fsync) per AUDIT_BATCH_MS instead of one per decision, which
      // capped the HTTP API at ~1,000 requests/s. auditLog() and close() write what is pending first.
      // Fail closed: what cannot be recorded is not done (the caller answers 503 with the reason).
      if (auditStopped) throw new Error('the store is closed: audit entry not written');
      if (auditFailure !== null && pendingAudit.length >= AUDIT_HELD_MAX) throw auditFailure;
      // Ids and reasons can come from a URL (up to the 16 KB header limit): a row keeps their start.
      pendingAudit.push([msOf(e.at, 'at'), e.actorKind, e.actorId, e.action, e.resourceKind, clip(e.resourceId, AUDIT_ID_MAX), e.allowed ? 1 : 0, e.status, clip(e.reason, AUDIT_REASON_MAX)]);
      if (auditFailure === null && pendingAudit.length >= AUDIT_BATCH_MAX) flushAudit();
      else auditTimer ??= setTimeout(flushAudit, AUDIT_BATCH_MS);
    },

    flushAudit,
    stopAudit() {
      // At close: one last try, then nothing waits on a timer (what is still held is said and dropped).
      flushAudit();
      if (auditTimer) clearTimeout(auditTimer);
      auditTimer = null;
      if (pendingAudit.length > 0) ctx.onError(pendingAudit.length + ' audit entries could not be written before close; dropped', auditFailure);
      pendingAudit = [];
      auditStopped = true;
    },

    async auditLog(filter: AuditFilter = {}) {
      flushAudit();
      if (auditFailure !== null) throw auditFailure;
      const where: string[] = [];
      const params: unknown[] = [];
      const eq = (column: string, value: unknown) => {
        where.push(`${column} = ?`);
        params.push(value);
      };
      if (filter.actorKind !== undefined) eq('actor_kind', filter.actorKind);
      if (filter.actorId !== undefined) eq('actor_id', filter.actorId);
      if (filter.resourceKind !== undefined) eq('resource_kind', filter.resourceKind);
      if (filter.resourceId !== undefined) eq('resource_id', filter.resourceId);
      if (filter.action !== undefined) eq('action', filter.action);
      if (filter.allowed !== undefined) eq('allowed', filter.allowed ? 1 : 0);
      if (filter.since !== undefined) {
        where.push('at >= ?');
        params.push(msOf(filter.since, 'since'));
      }
      if (filter.until !== undefined) {
        where.push('at < ?');
        params.push(msOf(filter.until, 'until'));
      }
      params.push(limitOf(filter.limit, DEFAULT_AUDIT_LIMIT));
      return auditQuery(where)
        .all(...params)
        .map(
          (r): AuditRecord => ({
            id: r.id,
            at: new Date(r.at),
            actorKind: r.actor_kind,
            actorId: r.actor_id,
            action: r.action,
            resourceKind: r.resource_kind,
            resourceId: r.resource_id,
            allowed: r.allowed !== 0,
            status: r.status,
            reason: r.reason,
          }),
        );
    },
  };
}
