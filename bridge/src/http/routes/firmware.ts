/**
 * A product's firmware, as Particle's /v1/products/:p/firmware: upload
 * (multipart, streamed to disk), list, get, edit, download, delete while
 * unreleased, release (product default and groups) and the impact preview.
 * Beyond Particle: each release starts a rollout (concurrency, batches, a
 * failure threshold that pauses it), which operators watch, pause, resume
 * and abort; and each device's OTA jobs.
 */
import type { Actor } from '../../policy/types.js';
import { JOB_STATES, type FirmwareVersion, type OtaJob, type OtaJobState, type Rollout } from '../../store/store.js';
import { defaultRolloutSettings, type RolloutProgress, type RolloutSettings } from '../../ota/manager.js';
import type { ReleasePlan } from '../../ota/desired.js';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { guard } from '../access.js';
import { route, STREAMING, type ApiContext, type Route } from '../app.js';
import { flag, isUpload, text, type Fields } from '../body.js';
import { ApiError } from '../errors.js';

/** The user behind a request, for uploaded_by (API users and customers upload as nobody). */
export function userOf(a: Actor): string | null {
  return a.kind === 'user' ? a.userId : null;
}

/** An optional firmware version field: null when absent, 400 when not an integer 1..2^32-1. */
export function versionField(b: Fields, name: string, required = false): number | null {
  const v = b[name];
  if (v === undefined || v === null || v === '') {
    if (required) throw ApiError.of(400, 'The ' + name + ' field is required');
    return null;
  }
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^[0-9]+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) throw ApiError.of(400, name + ' must be a version number, an integer from 1 to 4294967295');
  return n;
}

function groupList(v: unknown): string[] {
  if (v === undefined || v === null || v === '') return [];
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw ApiError.of(400, 'groups must be a list of group names');
}

function firmwareObject(f: FirmwareVersion, deviceCount: number) {
  return {
    _id: `${f.productId}:${f.version}`,
    version: f.version,
    title: f.title,
    description: f.description,
    name: `firmware-${f.version}.flim`,
    size: f.size,
    sha256: f.sha256,
    product_default: f.productDefault,
    released: f.released,
    uploaded_on: f.uploadedAt.toISOString(),
    product_id: f.productId,
    uploaded_by: f.uploadedBy,
    groups: f.groups,
    device_count: deviceCount,
  };
}

export function jobObject(j: OtaJob) {
  return {
    id: j.id, device_id: j.deviceId, product_id: j.productId, version: j.version, size: j.size, source: j.source, rollout_id: j.rolloutId,
    state: j.state, offset: j.offset, attempts: j.attempts, reason: j.reason,
    created_at: j.createdAt.toISOString(), updated_at: j.updatedAt.toISOString(), finished_at: j.finishedAt?.toISOString() ?? null,
  };
}

function rolloutObject(r: Rollout, p: RolloutProgress) {
  return {
    id: r.id, product_id: r.productId, version: r.version, product_default: r.productDefault, groups: r.groups, state: r.state, reason: r.reason,
    concurrency: r.concurrency, batch_size: r.batchSize, failure_threshold: Math.round(r.failureThreshold * 100000) / 1000, min_attempts: r.minAttempts,
    created_at: r.createdAt.toISOString(), updated_at: r.updatedAt.toISOString(),
    devices: { total: p.total, done: p.done, failed: p.failed, in_progress: p.inProgress, pending: p.pending, aborted: p.aborted },
  };
}

/** Who paused or aborted a rollout, as the team knows them: a username (an id means nothing to a reader). */
async function whoActs(ctx: ApiContext, actor: Actor): Promise<string> {
  if (actor.kind === 'user') return (await ctx.store.getUser(actor.userId))?.username ?? 'a deleted user';
  if (actor.kind === 'apiUser') return 'API user ' + ((await ctx.store.getApiUser(actor.apiUserId))?.username ?? actor.apiUserId);
  return actor.kind;
}

/** Devices running each version of the product. */
async function runningCounts(ctx: ApiContext, productId: string): Promise<Map<number | null, number>> {
  const out = new Map<number | null, number>();
  for (const t of await ctx.store.fleetTargets(productId)) out.set(t.firmwareVersion, (out.get(t.firmwareVersion) ?? 0) + 1);
  return out;
}

async function oneVersion(ctx: ApiContext, productId: string, raw: string): Promise<FirmwareVersion> {
  const v = versionField({ version: raw }, 'version', true) as number;
  const f = await ctx.store.getFirmware(productId, v);
  if (!f) throw ApiError.of(404, 'Firmware version not found');
  return f;
}

/** Rollout settings from a release body: flat fields, or a `rollout` object in JSON. */
function rolloutSettings(b: Fields): RolloutSettings {
  const src = (b.rollout !== null && typeof b.rollout === 'object' ? b.rollout : b) as Fields;
  // Checked here in full, before anything is released: a release whose rollout the store then refused stayed released, with no rollout to carry it.
  const int = (name: string, d: number, min: number, max?: number) => {
    const v = src[name];
    if (v === undefined || v === null || v === '') return d;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || (max !== undefined && n > max)) throw ApiError.of(400, `${name} must be a whole number of at least ${min}` + (max !== undefined ? ` and at most ${max}` : ''));
    return n;
  };
  let threshold = defaultRolloutSettings.failureThreshold;
  const t = src.failure_threshold;
  if (t !== undefined && t !== null && t !== '') {
    // A percentage, always: "1" is 1 %, never a fraction meaning 100 %.
    const n = Number(t);
    // Kept to a tenth of a percent: less would be stored as 0, a rollout that pauses at its first failure.
    if (!(Number.isFinite(n) && n >= 0.1 && n <= 100)) throw ApiError.of(400, 'failure_threshold is a percentage from 0.1 to 100');
    threshold = n / 100;
  }
  return {
    concurrency: int('concurrency', defaultRolloutSettings.concurrency, 1, 100000),
    batchSize: int('batch_size', defaultRolloutSettings.batchSize, 0),
    failureThreshold: threshold,
    minAttempts: int('min_attempts', defaultRolloutSettings.minAttempts, 1),
  };
}

async function ofProduct(ctx: ApiContext, productId: string, raw: string): Promise<Rollout> {
  const id = Number(raw);
  const r = Number.isSafeInteger(id) ? await ctx.store.getRollout(id) : null;
  if (!r || String(r.productId) !== productId) throw ApiError.of(404, 'Rollout not found');
  return r;
}

const P = '/v1/products/:product/firmware';
const R = '/v1/products/:product/rollouts';

/**
 * Particle's cloud compile (particle compile, particle flash <device> app.ino) is its build farm: not
 * offered here. Said as such, where a bare 404 read to particle-cli's user as a missing device.
 */
const NO_COMPILE = guard.signedIn('cloud compile: not offered on this bridge, for anyone');
const noCompile = () => {
  throw ApiError.of(501, 'Cloud compile is not available on this bridge: build the image and flash the file (particle flash <device> app.flim)');
};

export const firmwareRoutes: Route[] = [
  route('POST', '/v1/binaries', NO_COMPILE, noCompile),
  route('GET', '/v1/build_targets', NO_COMPILE, noCompile),
  route('GET', P, guard.product('firmware.view'), async (req, ctx, a) => {
    const counts = await runningCounts(ctx, a.product!.productId);
    return (await ctx.store.listFirmware(a.product!.productId)).map((f) => firmwareObject(f, counts.get(f.version) ?? 0));
  }),
  route('POST', P, guard.product('firmware.upload'), async (req, ctx, a) => {
    const b = await req.body();
    // particle-api-js names the file `file`; Particle's reference (and its curl examples) `binary`.
    const file = isUpload(b.file) ? b.file : isUpload(b.binary) ? b.binary : null;
    if (!file) throw ApiError.of(400, 'Send the image as a multipart file field named file (or binary)');
    // Text, or nothing: a list (title[], or the field repeated) is refused, not dropped.
    const titled = b.title === undefined ? '' : text(b.title, 'title');
    const title = titled.trim() === '' ? null : titled;
    const description = b.description === undefined ? null : text(b.description, 'description');
    const f = await ctx.ota.upload(Number(a.product!.productId), file, { version: versionField(b, 'version'), title, description, by: userOf(a.actor) });
    return { status: 201, body: firmwareObject(f, 0) };
  }, { files: true }),
  // Before /:version, which would read "release" as a version.
  route('PUT', P + '/release', guard.product('firmware.release'), async (req, ctx, a) => {
    const b = await req.body();
    const plan: ReleasePlan = { version: versionField(b, 'version', true) as number, productDefault: flag(b.product_default, 'product_default'), groups: groupList(b.groups) };
    if (!plan.productDefault && plan.groups.length === 0) throw ApiError.of(400, 'Release to the product (product_default: true) or to groups');
    const { firmware, rollout } = await ctx.ota.release(Number(a.product!.productId), plan, rolloutSettings(b), userOf(a.actor));
    const counts = await runningCounts(ctx, a.product!.productId);
    return { ...firmwareObject(firmware, counts.get(firmware.version) ?? 0), rollout: rolloutObject(rollout, await ctx.ota.progress(rollout)) };
  }),
  route('GET', P + '/:version', guard.product('firmware.view'), async (req, ctx, a) => {
    const f = await oneVersion(ctx, a.product!.productId, req.params.version);
    return firmwareObject(f, (await runningCounts(ctx, a.product!.productId)).get(f.version) ?? 0);
  }),
  route('PUT', P + '/:version', guard.product('firmware.edit'), async (req, ctx, a) => {
    const f = await oneVersion(ctx, a.product!.productId, req.params.version);
    const b = await req.body();
    if (!('title' in b) && !('description' in b)) throw ApiError.of(400, 'Send title or description');
    const changes = { title: 'title' in b ? text(b.title, 'title') : undefined, description: 'description' in b ? (b.description === null ? null : text(b.description, 'description')) : undefined };
    const g = await ctx.store.updateFirmware(a.product!.productId, f.version, changes);
    return firmwareObject(g, (await runningCounts(ctx, a.product!.productId)).get(g.version) ?? 0);
  }),
  route('DELETE', P + '/:version', guard.product('firmware.edit'), async (req, ctx, a) => {
    const f = await oneVersion(ctx, a.product!.productId, req.params.version);
    if (f.released) throw ApiError.of(409, 'Version ' + f.version + ' has been released; only unreleased versions can be deleted');
    await ctx.ota.remove(Number(a.product!.productId), f.version);
    return { status: 204, body: null };
  }),
  route('GET', P + '/:version/binary', guard.product('firmware.view'), async (req, ctx, a) => {
    const f = await oneVersion(ctx, a.product!.productId, req.params.version);
    const stream = createReadStream(join(ctx.dataDir, f.path));
    await new Promise<void>((resolve, reject) => stream.once('open', () => resolve()).once('error', reject));
    req.res.writeHead(200, {
      'content-type': 'application/octet-stream', 'content-length': f.size, 'content-disposition': `attachment; filename="firmware-${f.version}.flim"`, 'x-sha256': f.sha256,
    });
    stream.pipe(req.res);
    return STREAMING;
  }),
  route('GET', '/v1/products/:product/impact', guard.product('firmware.view'), async (req, ctx, a) => {
    const q = Object.fromEntries(req.url.searchParams) as Fields;
    const action = q.action ?? 'edit_groups_for_firmware';
    if (action !== 'edit_groups_for_firmware' && action !== 'release') throw ApiError.of(400, 'action must be edit_groups_for_firmware or release');
    const plan: ReleasePlan = { version: versionField(q, 'firmware_version', true) as number, productDefault: flag(q.product_default, 'product_default'), groups: groupList(q.groups) };
    const i = await ctx.ota.impact(Number(a.product!.productId), plan);
    const byVersion = [...i.byVersion].map(([version, devices]) => ({ version, devices })).sort((x, y) => y.devices - x.devices);
    return { devices: { firmware_update: { total: i.total, by_version: byVersion } } };
  }),
  route('GET', R, guard.product('firmware.view'), async (req, ctx, a) => {
    const out = [];
    for (const r of await ctx.store.listRollouts(a.product!.productId)) out.push(rolloutObject(r, await ctx.ota.progress(r)));
    return { rollouts: out };
  }),
  route('GET', R + '/:rollout', guard.product('firmware.view'), async (req, ctx, a) => {
    const r = await ofProduct(ctx, a.product!.productId, req.params.rollout);
    return rolloutObject(r, await ctx.ota.progress(r));
  }),
  route('PUT', R + '/:rollout', guard.product('firmware.release'), async (req, ctx, a) => {
    const r = await ofProduct(ctx, a.product!.productId, req.params.rollout);
    const action = (await req.body()).action;
    if (action !== 'pause' && action !== 'resume' && action !== 'abort') throw ApiError.of(400, 'action must be pause, resume or abort');
    const after = await ctx.ota.rolloutAction(r.id, action, await whoActs(ctx, a.actor));
    return rolloutObject(after, await ctx.ota.progress(after));
  }),
  // A device's jobs, or a rollout's (in one state: which devices failed it, and why).
  route('GET', '/v1/products/:product/ota_jobs', guard.product('firmware.view'), async (req, ctx, a) => {
    const q = req.url.searchParams;
    const deviceId = q.get('device_id');
    const rollout = q.get('rollout');
    if (rollout !== null) {
      const r = await ofProduct(ctx, a.product!.productId, rollout);
      const state = q.get('state');
      if (state !== null && !JOB_STATES.includes(state as OtaJobState)) throw ApiError.of(400, 'state must be one of ' + JOB_STATES.join(', '));
      return { jobs: (await ctx.store.rolloutJobs(r.id, state as OtaJobState | null)).map(jobObject) };
    }
    if (!deviceId) throw ApiError.of(400, 'Give device_id, or rollout (and state)');
    const d = await ctx.store.getDevice(deviceId);
    if (!d || String(d.productId) !== a.product!.productId) throw ApiError.of(404, 'Device not found');
    return { jobs: (await ctx.store.deviceJobs(deviceId, 50)).map(jobObject) };
  }),
];
