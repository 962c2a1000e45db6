/** Firmware versions of a product, their releases (default and groups), rollouts and OTA jobs. */
import { ACTIVE_JOB_STATES, StoreError } from '../store.js';
import type { DeviceTarget, FirmwareStore, FirmwareVersion, OtaJob, OtaJobState, Rollout, RolloutState } from '../store.js';
import { cleanName, parseJson, productKey, refusing, toDate } from './context.js';
import type { Ctx } from './context.js';

interface FirmwareRaw {
  product_id: number;
  version: number;
  title: string;
  description: string | null;
  size: number;
  sha256: string;
  path: string;
  uploaded_by: string | null;
  uploaded_at: number;
  released: number;
  product_default: number;
  groups: string | null;
}

interface JobRaw {
  id: number;
  device_id: string;
  product_id: number;
  version: number;
  size: number;
  sha256: string;
  path: string;
  source: OtaJob['source'];
  rollout_id: number | null;
  state: OtaJobState;
  offset: number;
  attempts: number;
  reason: string | null;
  created_by: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

interface RolloutRaw {
  id: number;
  product_id: number;
  version: number;
  product_default: number;
  groups: string;
  concurrency: number;
  batch_size: number;
  failure_permille: number;
  min_attempts: number;
  state: RolloutState;
  reason: string | null;
  created_by: string | null;
  created_at: number;
  updated_at: number;
  count_from: number;
}

interface TargetRaw {
  id: string;
  product_id: number;
  firmware_version: number | null;
  locked_firmware: number | null;
  development: number;
  quarantined: number;
  group_versions: string | null;
}

const STATES: readonly OtaJobState[] = ['pending', 'sending', 'verified', 'done', 'failed', 'aborted'];

/** Firmware versions are uint32, as the protocol carries them. */
export function isVersion(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 0xffffffff;
}

export function version(v: unknown): number {
  if (!isVersion(v)) throw new StoreError('invalid', 'a firmware version is an integer from 1 to 4294967295');
  return v;
}

function firmware(r: FirmwareRaw): FirmwareVersion {
  return {
    productId: r.product_id, version: r.version, title: r.title, description: r.description, size: r.size, sha256: r.sha256, path: r.path,
    uploadedBy: r.uploaded_by, uploadedAt: new Date(r.uploaded_at), released: r.released === 1, productDefault: r.product_default === 1,
    groups: r.groups ? r.groups.split(',').sort() : [],
  };
}

function job(r: JobRaw): OtaJob {
  return {
    id: r.id, deviceId: r.device_id, productId: r.product_id, version: r.version, size: r.size, sha256: r.sha256, path: r.path, source: r.source,
    rolloutId: r.rollout_id, state: r.state, offset: r.offset, attempts: r.attempts, reason: r.reason, createdBy: r.created_by,
    createdAt: new Date(r.created_at), updatedAt: new Date(r.updated_at), finishedAt: toDate(r.finished_at),
  };
}

function rollout(r: RolloutRaw): Rollout {
  return {
    id: r.id, productId: r.product_id, version: r.version, productDefault: r.product_default === 1, groups: parseJson<string[]>(r.groups),
    concurrency: r.concurrency, batchSize: r.batch_size, failureThreshold: r.failure_permille / 1000, minAttempts: r.min_attempts, state: r.state,
    reason: r.reason, createdBy: r.created_by, createdAt: new Date(r.created_at), updatedAt: new Date(r.updated_at), countFrom: new Date(r.count_from),
  };
}

function target(r: TargetRaw): DeviceTarget {
  return {
    id: r.id, productId: r.product_id, firmwareVersion: r.firmware_version, lockedFirmware: r.locked_firmware, development: r.development === 1,
    quarantined: r.quarantined === 1, groupVersions: r.group_versions ? r.group_versions.split(',').map(Number) : [],
  };
}

export function firmwareStore(ctx: Ctx): FirmwareStore {
  const { db } = ctx;
  const SELECT_FW = `SELECT f.*, (SELECT GROUP_CONCAT(g.name) FROM group_releases r JOIN device_groups g ON g.id = r.group_id WHERE g.product_id = f.product_id AND r.version = f.version) AS groups
    FROM firmware_versions f`;
  const listFw = db.prepare<FirmwareRaw>(`${SELECT_FW} WHERE f.product_id = ? ORDER BY f.version DESC`);
  const oneFw = db.prepare<FirmwareRaw>(`${SELECT_FW} WHERE f.product_id = ? AND f.version = ?`);
  const insertFw = db.prepare(
    `INSERT INTO firmware_versions (product_id, version, title, description, size, sha256, path, uploaded_by, uploaded_at, released, product_default)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)`,
  );
  const editFw = db.prepare('UPDATE firmware_versions SET title = ?, description = ? WHERE product_id = ? AND version = ?');
  const deleteFw = db.prepare('DELETE FROM firmware_versions WHERE product_id = ? AND version = ?');
  const clearDefault = db.prepare('UPDATE firmware_versions SET product_default = 0 WHERE product_id = ?');
  const setReleased = db.prepare('UPDATE firmware_versions SET released = 1, product_default = ? WHERE product_id = ? AND version = ?');
  const clearGroupsOf = db.prepare('DELETE FROM group_releases WHERE group_id IN (SELECT id FROM device_groups WHERE product_id = ?) AND version = ?');
  const setGroup = db.prepare(
    `INSERT INTO group_releases (group_id, version) SELECT id, ? FROM device_groups WHERE product_id = ? AND name = ?
     ON CONFLICT (group_id) DO UPDATE SET version = excluded.version`,
  );
  const defaultOf = db.prepare<{ version: number }>('SELECT version FROM firmware_versions WHERE product_id = ? AND product_default = 1');
  const groupReleases = db.prepare<{ name: string; version: number }>('SELECT g.name, r.version FROM group_releases r JOIN device_groups g ON g.id = r.group_id WHERE g.product_id = ?');
  const SELECT_TARGET = `SELECT d.id, d.product_id, d.firmware_version, d.locked_firmware, d.development, d.quarantined,
      (SELECT GROUP_CONCAT(r.version) FROM device_group_members m JOIN group_releases r ON r.group_id = m.group_id WHERE m.device_id = d.id) AS group_versions
    FROM devices d`;
  const targetOne = db.prepare<TargetRaw>(`${SELECT_TARGET} WHERE d.id = ?`);
  const targetsOf = db.prepare<TargetRaw>(`${SELECT_TARGET} WHERE d.product_id = ? ORDER BY d.id`);
  const productOfDevice = db.prepare<{ product_id: number }>('SELECT product_id FROM devices WHERE id = ?');

  const ACTIVE = `state IN (${ACTIVE_JOB_STATES.map((x) => `'${x}'`).join(', ')})`;
  const insertJob = db.prepare(
    `INSERT INTO ota_jobs (device_id, product_id, version, size, sha256, path, source, rollout_id, state, "offset", attempts, reason, created_by, created_at, updated_at, finished_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, 0, NULL, ?, ?, ?, NULL)`,
  );
  const oneJob = db.prepare<JobRaw>('SELECT * FROM ota_jobs WHERE id = ?');
  // What still needs a version's image: devices locked to it, and updates to it not yet ended.
  const usesOf = db.prepare<{ locked: number; jobs: number }>(
    `SELECT (SELECT COUNT(*) FROM devices WHERE product_id = ? AND locked_firmware = ?) AS locked,
            (SELECT COUNT(*) FROM ota_jobs WHERE path = ? AND ${ACTIVE}) AS jobs`,
  );
  const activeOf = db.prepare<JobRaw>(`SELECT * FROM ota_jobs WHERE device_id = ? AND ${ACTIVE} ORDER BY id DESC`);
  const allActive = db.prepare<JobRaw>(`SELECT * FROM ota_jobs WHERE ${ACTIVE} ORDER BY id`);
  const jobsOf = db.prepare<JobRaw>('SELECT * FROM ota_jobs WHERE device_id = ? ORDER BY id DESC LIMIT ?');
  const jobsOfRollout = db.prepare<JobRaw>('SELECT * FROM ota_jobs WHERE rollout_id = ? AND (? IS NULL OR state = ?) ORDER BY id DESC LIMIT ?');
  const lastFor = db.prepare<JobRaw>('SELECT * FROM ota_jobs WHERE device_id = ? AND version = ? ORDER BY id DESC LIMIT 1');
  const endJob = db.prepare('UPDATE ota_jobs SET state = ?, reason = ?, updated_at = ?, finished_at = ? WHERE id = ?');
  const updateJob = db.prepare('UPDATE ota_jobs SET state = ?, "offset" = ?, attempts = ?, reason = ?, updated_at = ?, finished_at = ? WHERE id = ?');
  const setOffset = db.prepare(`UPDATE ota_jobs SET "offset" = ?, updated_at = ? WHERE id = ? AND state = 'sending'`);
  const saveOffsets = db.transaction((rows: ReadonlyArray<readonly [number, number]>, t: number) => {
    for (const [id, offset] of rows) setOffset.run(offset, t, id);
  });

  const insertRollout = db.prepare(
    `INSERT INTO rollouts (product_id, version, product_default, groups, concurrency, batch_size, failure_permille, min_attempts, state, reason, created_by, created_at, updated_at, count_from)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', NULL, ?, ?, ?, ?)`,
  );
  const oneRollout = db.prepare<RolloutRaw>('SELECT * FROM rollouts WHERE id = ?');
  const rolloutsOf = db.prepare<RolloutRaw>('SELECT * FROM rollouts WHERE product_id = ? ORDER BY id DESC');
  const live = db.prepare<RolloutRaw>(`SELECT * FROM rollouts WHERE state IN ('running', 'paused') ORDER BY id`);
  const liveOf = db.prepare<RolloutRaw>(`SELECT * FROM rollouts WHERE product_id = ? AND state IN ('running', 'paused')`);
  const setRollout = db.prepare('UPDATE rollouts SET state = ?, reason = ?, count_from = ?, updated_at = ? WHERE id = ?');
  const counts = db.prepare<{ state: OtaJobState; device_id: string; created_at: number; finished_at: number | null }>(
    'SELECT state, device_id, created_at, finished_at FROM ota_jobs WHERE rollout_id = ? ORDER BY id',
  );

  function requireFirmware(productId: number, v: number): FirmwareRaw {
    const r = oneFw.get(productId, v);
    if (!r) throw new StoreError('not_found', `no firmware version ${v} in product ${productId}`);
    return r;
  }

  const release = db.transaction((productId: number, v: number, productDefault: boolean, groups: readonly string[]) => {
    requireFirmware(productId, v);
    if (productDefault) clearDefault.run(productId);
    setReleased.run(productDefault ? 1 : 0, productId, v);
    clearGroupsOf.run(productId, v);
    for (const g of groups) {
      if (setGroup.run(v, productId, g).changes === 0) throw new StoreError('not_found', `no group ${g} in product ${productId}`);
    }
  });

  const create = db.transaction((input: Parameters<FirmwareStore['createJob']>[0]) => {
    const product = productOfDevice.get(input.deviceId);
    if (!product) throw new StoreError('not_found', `no device ${input.deviceId}`);
    const t = ctx.now();
    for (const a of activeOf.all(input.deviceId)) endJob.run('aborted', 'superseded', t, t, a.id);
    const id = Number(
      refusing({ foreignKey: 'no such rollout' }, () =>
        insertJob.run(input.deviceId, product.product_id, input.version, input.size, input.sha256, input.path, input.source, input.rolloutId, input.createdBy, t, t),
      ).lastInsertRowid,
    );
    return job(oneJob.get(id) as JobRaw);
  });

  const adoptJobs = db.prepare(`UPDATE ota_jobs SET rollout_id = ?, updated_at = ? WHERE rollout_id = ? AND ${ACTIVE}`);
  const createRollout = db.transaction((productId: number, r: Parameters<FirmwareStore['createRollout']>[1]) => {
    const t = ctx.now();
    const sameVersion: number[] = [];
    for (const old of liveOf.all(productId)) {
      const o = rollout(old);
      // A release of a version says every target of that version (releaseFirmware), so it covers any
      // rollout of the same version; of another version, one whose default or groups it takes over.
      const covered = o.version === r.version || (r.productDefault ? o.productDefault || o.groups.length === 0 : !o.productDefault && o.groups.every((g) => r.groups.includes(g)));
      if (covered) setRollout.run('superseded', `superseded by the release of version ${r.version}`, old.count_from, t, old.id);
      if (o.version === r.version) sameVersion.push(old.id);
    }
    const id = Number(
      refusing({ foreignKey: `no product ${productId}` }, () =>
        insertRollout.run(productId, r.version, r.productDefault ? 1 : 0, JSON.stringify([...r.groups].sort()), r.concurrency, r.batchSize,
          Math.round(r.failureThreshold * 1000), r.minAttempts, r.createdBy, t, t, t),
      ).lastInsertRowid,
    );
    // Jobs still under way to the same image are the new rollout's: within its concurrency, ended by its abort.
    for (const old of sameVersion) adoptJobs.run(id, t, old);
    return rollout(oneRollout.get(id) as RolloutRaw);
  });

  return {
    async addFirmware(productId, input) {
      const p = productKey(productId);
      const v = version(input.version);
      const title = cleanName(input.title, 'title');
      if (!Number.isInteger(input.size) || input.size < 1) throw new StoreError('invalid', 'an image has at least one byte');
      if (!/^[0-9a-f]{64}$/.test(input.sha256)) throw new StoreError('invalid', 'sha256 must be 64 lowercase hex digits');
      refusing({ unique: `version ${v} already exists in product ${p}`, foreignKey: `no product ${p}` }, () =>
        insertFw.run(p, v, title, input.description ?? null, input.size, input.sha256, input.path, input.uploadedBy, ctx.now()),
      );
      return firmware(oneFw.get(p, v) as FirmwareRaw);
    },
    async listFirmware(productId) {
      return listFw.all(productKey(productId)).map(firmware);
    },
    async getFirmware(productId, v) {
      const r = isVersion(v) ? oneFw.get(productKey(productId), v) : undefined;
      return r ? firmware(r) : null;
    },
    async updateFirmware(productId, v, changes) {
      const p = productKey(productId);
      const was = requireFirmware(p, version(v));
      const title = changes.title === undefined ? was.title : cleanName(changes.title, 'title');
      const description = changes.description === undefined ? was.description : changes.description;
      editFw.run(title, description, p, v);
      return firmware(oneFw.get(p, v) as FirmwareRaw);
    },
    async deleteFirmware(productId, v) {
      const p = productKey(productId);
      const r = isVersion(v) ? oneFw.get(p, v) : undefined;
      if (!r) return null;
      if (r.released === 1) throw new StoreError('conflict', `version ${v} has been released; only unreleased versions can be deleted`);
      const uses = usesOf.get(p, v, r.path) as { locked: number; jobs: number };
      if (uses.locked > 0 || uses.jobs > 0) {
        const what = [uses.locked > 0 ? `${uses.locked} device(s) locked to it` : '', uses.jobs > 0 ? `${uses.jobs} update(s) to it not finished` : ''];
        throw new StoreError('conflict', `version ${v} is in use (${what.filter(Boolean).join(', ')}); unlock those devices, and let those updates end or flash those devices another version, first`);
      }
      deleteFw.run(p, v);
      return firmware(r);
    },
    async releaseFirmware(productId, r) {
      const p = productKey(productId);
      const v = version(r.version);
      if (!Array.isArray(r.groups) || r.groups.some((g) => typeof g !== 'string')) throw new StoreError('invalid', 'groups must be a list of group names');
      release.immediate(p, v, r.productDefault === true, r.groups.map((g) => g.trim().toLowerCase()));
      return firmware(oneFw.get(p, v) as FirmwareRaw);
    },
    async productReleases(productId) {
      const p = productKey(productId);
      const groups = new Map<string, number>();
      for (const g of groupReleases.all(p)) groups.set(g.name, g.version);
      return { productDefault: defaultOf.get(p)?.version ?? null, groups };
    },
    async deviceTarget(deviceId) {
      const r = typeof deviceId === 'string' ? targetOne.get(deviceId) : undefined;
      return r ? target(r) : null;
    },
    async fleetTargets(productId) {
      ctx.commit.flush();
      return targetsOf.all(productKey(productId)).map(target);
    },
    async createJob(input) {
      version(input.version);
      return create.immediate(input);
    },
    async getJob(id) {
      const r = Number.isSafeInteger(id) ? oneJob.get(id) : undefined;
      return r ? job(r) : null;
    },
    async activeJob(deviceId) {
      const r = activeOf.get(deviceId);
      return r ? job(r) : null;
    },
    async activeJobs() {
      return allActive.all().map(job);
    },
    async updateJob(id, changes) {
      const was = oneJob.get(id);
      if (!was) throw new StoreError('not_found', `no OTA job ${id}`);
      const state = changes.state ?? was.state;
      if (!STATES.includes(state)) throw new StoreError('invalid', `unknown job state ${state}`);
      const t = ctx.now();
      const finished = ACTIVE_JOB_STATES.includes(state) ? null : (was.finished_at ?? t);
      updateJob.run(state, changes.offset ?? was.offset, changes.attempts ?? was.attempts, changes.reason === undefined ? was.reason : changes.reason, t, finished, id);
      return job(oneJob.get(id) as JobRaw);
    },
    async saveJobOffsets(offsets) {
      if (offsets.length > 0) saveOffsets.immediate(offsets, ctx.now());
    },
    async deviceJobs(deviceId, limit = 20) {
      return jobsOf.all(deviceId, Math.max(1, Math.min(1000, limit))).map(job);
    },
    async rolloutJobs(rolloutId, state, limit = 1000) {
      return jobsOfRollout.all(rolloutId, state, state, Math.max(1, Math.min(10000, limit))).map(job);
    },
    async lastJobFor(deviceId, v) {
      const r = lastFor.get(deviceId, v);
      return r ? job(r) : null;
    },
    async createRollout(productId, input) {
      const p = productKey(productId);
      version(input.version);
      if (!Number.isInteger(input.concurrency) || input.concurrency < 1 || input.concurrency > 100000) throw new StoreError('invalid', 'concurrency is a whole number from 1 to 100000');
      if (!Number.isInteger(input.batchSize) || input.batchSize < 0) throw new StoreError('invalid', 'batch_size is a whole number, 0 for no batches');
      // Stored in tenths of a percent: a threshold that would round to 0 would pause at the first failure.
      if (!(input.failureThreshold >= 0.0005 && input.failureThreshold <= 1)) throw new StoreError('invalid', 'failure_threshold is a fraction from 0.001 to 1 (or a percentage from 0.1 to 100)');
      if (!Number.isInteger(input.minAttempts) || input.minAttempts < 1) throw new StoreError('invalid', 'min_attempts is a whole number of at least 1');
      return createRollout.immediate(p, input);
    },
    async getRollout(id) {
      const r = Number.isSafeInteger(id) ? oneRollout.get(id) : undefined;
      return r ? rollout(r) : null;
    },
    async listRollouts(productId) {
      return rolloutsOf.all(productKey(productId)).map(rollout);
    },
    async liveRollouts() {
      return live.all().map(rollout);
    },
    async updateRollout(id, changes) {
      const was = oneRollout.get(id);
      if (!was) throw new StoreError('not_found', `no rollout ${id}`);
      setRollout.run(changes.state ?? was.state, changes.reason === undefined ? was.reason : changes.reason, changes.countFrom?.getTime() ?? was.count_from, ctx.now(), id);
      return rollout(oneRollout.get(id) as RolloutRaw);
    },
    async rolloutCounts(id) {
      const r = oneRollout.get(id);
      const from = r?.count_from ?? 0;
      const out = { active: 0, done: 0, failed: 0, started: 0, failedDevices: new Set<string>(), reached: new Map<string, OtaJobState>() };
      for (const j of counts.all(id)) {
        out.reached.set(j.device_id, j.state);
        if (j.state === 'failed') out.failedDevices.add(j.device_id);
        if (j.created_at >= from) out.started++;
        if (ACTIVE_JOB_STATES.includes(j.state)) out.active++;
        else if ((j.finished_at ?? 0) >= from) {
          if (j.state === 'done') out.done++;
          else if (j.state === 'failed') out.failed++;
        }
      }
      return out;
    },
  };
}
