/**
 * Devices, as Particle's /v1/devices, in its three forms: /v1/devices/:id,
 * /v1/products/:product/devices/:id and /v1/orgs/:org/devices/:id (the guard
 * finds the device only under its own product or org). Get, variable read,
 * function call, ping, the multiplexed PUT, remove/unclaim; the listings; claim
 * and import. Variables and functions are answered by the live device through
 * the broker's request router: 404 when it is offline, 408 when it does not
 * answer in time.
 */
import { isDeviceId, LIMITS, utf8Length, type Action } from '@flotilla/protocol';
import { newDeviceSecret } from '../../store/secrets.js';
import { groupName, type Device, type DeviceChanges, type OtaJob, type ProductId, type ProductReleases } from '../../store/store.js';
import { desiredVersion } from '../../ota/desired.js';
import { actorId, auditEntry } from '../../identity/actor.js';
import { jobObject, versionField } from './firmware.js';
import { PHOTON } from './user.js';
import { RequestTimeout } from '../../mqtt/requests.js';
import { authorize, authorizeAlso, authorizeProductAlso, guard, inPersonalSpace, seesDevice, visibleProducts } from '../access.js';
import { paged } from '../pages.js';
import { mayClaimById } from '../../customers/claims.js';
import type { Actor } from '../../policy/types.js';

export { visibleProducts };
import { route, STREAMING, type ApiContext, type Request, type Route } from '../app.js';
import { ApiError } from '../errors.js';
import { bool, flag, isUpload, type Fields, type Upload } from '../body.js';
import { readFile } from 'node:fs/promises';

/**
 * Particle's device object (the product listing's fields included); `owner`: the username of the user
 * or customer who claimed it (holders() finds it); `releases`: its product's, for the version its
 * releases target it with (Particle's targeted_firmware_release_version: by its groups or the product
 * default, a lock aside; none for a development or quarantined device).
 */
export function deviceObject(d: Device, groups: readonly string[] = [], owner: string | null = null, releases: ProductReleases | null = null) {
  const groupVersions = groups.flatMap((g) => (releases?.groups.has(g) ? [releases.groups.get(g)!] : []));
  const targeted = releases ? desiredVersion({ ...d, lockedFirmware: null, groupVersions }, releases)?.version ?? null : null;
  return {
    id: d.id,
    name: d.name,
    owner,
    last_app: null,
    last_ip_address: d.lastIpAddress,
    last_heard: d.lastHeard ? d.lastHeard.toISOString() : null,
    last_handshake_at: d.lastHandshakeAt ? d.lastHandshakeAt.toISOString() : null,
    product_id: d.productId,
    online: d.online,
    connected: d.online,
    platform_id: PHOTON,
    cellular: false,
    notes: d.notes,
    functions: d.functions,
    variables: d.variables,
    status: 'normal',
    firmware_product_id: d.productId,
    firmware_version: d.firmwareVersion,
    desired_firmware_version: d.lockedFirmware,
    targeted_firmware_release_version: targeted,
    development: d.development,
    quarantined: d.quarantined,
    denied: false,
    groups: [...groups],
  };
}

async function getDevice(ctx: ApiContext, id: string): Promise<Device> {
  const d = await ctx.store.getDevice(id);
  if (!d) throw ApiError.of(404, 'Device not found');
  return d;
}

async function withGroups(ctx: ApiContext, d: Device) {
  return deviceObject(d, await ctx.store.deviceGroups(d.id), (await holders(ctx, [d])).of(d), await ctx.store.productReleases(d.productId));
}

/** Who holds each of these devices, by username (Particle's `owner`): the user's who claimed it, or the customer's; each read once. */
async function holders(ctx: ApiContext, devices: readonly Device[]) {
  const users = new Map<string, string | null>();
  const customers = new Map<string, string | null>();
  for (const d of devices) {
    if (d.ownerUserId !== null && !users.has(d.ownerUserId)) users.set(d.ownerUserId, (await ctx.store.getUser(d.ownerUserId))?.username ?? null);
    if (d.customerId !== null && !customers.has(d.customerId)) customers.set(d.customerId, (await ctx.store.getCustomer(d.customerId))?.username ?? null);
  }
  return {
    of: (d: Device): string | null => (d.ownerUserId !== null ? users.get(d.ownerUserId) : d.customerId !== null ? customers.get(d.customerId) : null) ?? null,
    /** The customers among them, as Particle's product device listing shows them. */
    customers: () => [...customers].flatMap(([id, username]) => (username === null ? [] : [{ id, username }])),
  };
}

/** An offline device is not connected, whatever is asked of it (a name it never said included). */
function online(device: Device): Device {
  if (!device.online) throw ApiError.of(404, 'Device is not connected');
  return device;
}

async function ask(ctx: ApiContext, device: Device, body: Parameters<ApiContext['requests']['ask']>[1]) {
  online(device);
  try {
    return await ctx.requests.ask(device.id, body, ctx.callTimeoutMs);
  } catch (e) {
    if (e instanceof RequestTimeout) throw ApiError.of(408, 'Timed out.');
    throw e;
  }
}

/** Particle's `format=raw`: the bare value as text (a string without JSON's quotes), not a JSON body. */
function rawValue(req: Request, value: unknown): typeof STREAMING {
  const text = String(value);
  req.res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  req.res.end(text);
  return STREAMING;
}

/**
 * What putting devices into `groups` is decided as: editing groups; flashing,
 * since a group's release decides the firmware its devices run (an API user
 * refused desired_firmware_version moved devices onto a release this way);
 * and creating any group named that does not exist yet (it is made then).
 */
async function groupingActions(ctx: ApiContext, productId: string, groups: readonly string[]): Promise<Action[]> {
  const known = new Set((await ctx.store.listGroups(productId)).map((g) => g.name));
  return ['group.edit', 'device.flash', ...(groups.some((g) => !known.has(g)) ? ['group.create' as const] : [])];
}

/** PUT's fields, one action each (Particle's multiplexed update). */
const EDIT_FIELDS = ['name', 'notes', 'development', 'quarantined', 'groups'] as const;
const FLASH_FIELDS = ['desired_firmware_version', 'flash', 'file', 'build_target_version', 'firmware_version'] as const;

/**
 * What the guard decides a PUT on: its firmware fields', else its signal's, else an edit. The handler
 * decides the edits a lock comes with (authorizeAlso). An upload is decided unread as a flash, or, for
 * an actor who may not flash, as any of the others (`unread`); the handler decides what it holds.
 */
const updateAction = Object.assign(
  async (body: () => Promise<Fields>): Promise<Action> => {
    const b = await body();
    if (FLASH_FIELDS.some((f) => f in b)) return 'device.flash';
    if ('signal' in b) return 'device.ping';
    return 'device.edit';
  },
  { unread: ['device.edit', 'device.ping'] as readonly Action[] },
);

/**
 * Which fields of a PUT go together. particle-api-js's updateDevice sends name, notes, development
 * and desired_firmware_version (with flash) in one body, and Particle applies them all; a signal, a
 * one-off flash (file, firmware_version) or a build goes alone, as a request of its own: refused
 * with the others rather than some fields done and the rest dropped.
 */
function fieldsTogether(body: Fields): { edits: boolean; lock: boolean } {
  const edits = EDIT_FIELDS.some((f) => f in body);
  const lock = 'desired_firmware_version' in body || 'flash' in body;
  const alone = (['signal', 'file', 'firmware_version', 'build_target_version'] as const).filter((f) => f in body);
  if (alone.length > 1 || (alone.length === 1 && (edits || lock))) {
    throw ApiError.of(400, alone[0] + ' goes in a PUT of its own: send ' + [...alone, ...(edits || lock ? ['the other fields'] : [])].join(' and ') + ' separately');
  }
  return { edits, lock };
}

function list(v: unknown, name: string): string[] {
  if (typeof v === 'string') return v === '' ? [] : v.split(',').map((s) => s.trim());
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw ApiError.of(400, name + ' must be a list of strings');
}

/** An import file's largest size: 1000 device IDs, one per line, with room to spare (the upload stops there). */
const IMPORT_FILE_MAX = 64 * 1024;

/** The device IDs of an import file: one per line (or comma-separated, as a spreadsheet exports them); blank lines skipped. */
async function idsIn(file: Upload): Promise<string[]> {
  const text = await readFile(file.path, 'utf8');
  return text.split(/[\r\n,;]+/).map((s) => s.trim()).filter((s) => s !== '');
}

/**
 * Over-the-air flashing of one device: a multipart `file` (a FLIM image, or a
 * JS bundle with its `version`), a stored `firmware_version` of its product,
 * or Particle's lock (`desired_firmware_version`, with `flash: true` to update
 * now rather than at the next connection; null unlocks).
 */
async function flash(ctx: ApiContext, device: Device, body: Fields, by: string) {
  const started = (job: OtaJob) => ({
    id: device.id,
    status: device.online ? 'Update started' : 'Update queued: the device is offline and updates when it next connects',
    job: jobObject(job),
  });
  if ('file' in body) {
    if (!isUpload(body.file)) throw ApiError.of(400, 'Send the image as a multipart file field named file');
    return started(await ctx.ota.flashFile(device.id, device.productId, body.file, versionField(body, 'version'), by));
  }
  if ('build_target_version' in body) throw ApiError.of(400, 'This bridge does not compile source: send the image as a multipart file');
  if ('firmware_version' in body) return started(await ctx.ota.flashVersion(device.id, device.productId, versionField(body, 'firmware_version', true) as number, by));
  const lock = await lockOf(ctx, device.productId, body);
  const d = await ctx.store.updateDevice(device.id, { lockedFirmware: lock.version });
  if (lock.now) await ctx.ota.lockNow(device.id, device.productId, lock.version!, by);
  return { id: device.id, desired_firmware_version: d.lockedFirmware, updated_at: new Date().toISOString() };
}

/** A PUT's firmware lock, checked (the version exists): the version (null unlocks), and whether to flash it now. */
async function lockOf(ctx: ApiContext, productId: ProductId, body: Fields): Promise<{ version: number | null; now: boolean }> {
  if (!('desired_firmware_version' in body)) throw ApiError.of(400, 'Send file, firmware_version or desired_firmware_version');
  const version = versionField(body, 'desired_firmware_version');
  if (version !== null && !(await ctx.store.getFirmware(productId, version))) throw ApiError.of(404, 'Firmware version ' + version + ' not found in product ' + productId);
  return { version, now: version !== null && 'flash' in body && bool(body.flash, 'flash') };
}

/** The device paths, under one prefix ('/v1', '/v1/products/:product' or '/v1/orgs/:org'). */
function devicePaths(prefix: string): Route[] {
  const P = prefix + '/devices/:id';
  return [
    route('GET', P, guard.device('device.view'), async (req, ctx, a) => withGroups(ctx, await getDevice(ctx, a.device!.id))),
    route('GET', P + '/:name', guard.device('device.variable'), async (req, ctx, a) => {
      const device = online(await getDevice(ctx, a.device!.id));
      const name = req.params.name;
      if (!(name in device.variables)) throw ApiError.of(404, 'Variable not found');
      const r = await ask(ctx, device, { op: 'var', name });
      if (r.status !== 'ok') throw ApiError.of(r.status === 'not_found' ? 404 : 400, r.status === 'not_found' ? 'Variable not found' : String(r.value ?? r.status));
      if (req.url.searchParams.get('format') === 'raw') return rawValue(req, r.value);
      return {
        cmd: 'VarReturn', name, result: r.value,
        coreInfo: { name: device.name, deviceID: device.id, connected: true, last_handshake_at: device.lastHandshakeAt?.toISOString() ?? null, last_app: '' },
      };
    }),
    route('POST', P + '/:name', guard.device('device.function'), async (req, ctx, a) => {
      const body = await req.body();
      // Particle's API takes `arg`; particle-api-js sends `args`.
      const raw = body.arg ?? body.args ?? '';
      if (typeof raw !== 'string') throw ApiError.of(400, 'arg must be a string');
      if (utf8Length(raw) > LIMITS.functionArgMaxBytes) throw ApiError.of(400, 'arg is over ' + LIMITS.functionArgMaxBytes + ' bytes');
      const device = online(await getDevice(ctx, a.device!.id));
      const name = req.params.name;
      if (!device.functions.includes(name)) throw ApiError.of(404, 'Function not found');
      const r = await ask(ctx, device, { op: 'call', name, arg: raw });
      if (r.status !== 'ok') throw ApiError.of(r.status === 'not_found' ? 404 : 400, r.status === 'not_found' ? 'Function not found' : String(r.value ?? r.status));
      if (req.url.searchParams.get('format') === 'raw' || body.format === 'raw') return rawValue(req, r.value);
      return { id: device.id, name: device.name, connected: true, return_value: r.value };
    }),
    route('PUT', P + '/ping', guard.device('device.ping'), async (req, ctx, a) => {
      const device = await getDevice(ctx, a.device!.id);
      if (!device.online) return { online: false, ok: true };
      try {
        const r = await ctx.requests.ask(device.id, { op: 'ping' }, ctx.callTimeoutMs);
        return { online: r.status === 'ok', ok: true };
      } catch (e) {
        if (e instanceof RequestTimeout) return { online: false, ok: true };
        throw e;
      }
    }),
    route('PUT', P, guard.device(updateAction), async (req, ctx, a) => {
      const body = await req.body();
      const id = a.device!.id;
      // An upload was decided before it was read (app.ts): what it holds is decided now, when that is something else.
      const action = await updateAction(() => Promise.resolve(body));
      if (action !== a.action) await authorizeAlso(ctx.store, a, [action]);
      const together = fieldsTogether(body);
      // A lock with edits: the guard decided device.flash; the edits are decided too, before anything is done.
      if (together.lock && together.edits) await authorizeAlso(ctx.store, a, ['device.edit']);
      if ('signal' in body) {
        const on = bool(body.signal, 'signal');
        const r = await ask(ctx, await getDevice(ctx, id), { op: 'signal', on });
        return { id, connected: true, signaling: r.status === 'ok' ? on : false };
      }
      if (!together.edits && FLASH_FIELDS.some((f) => f in body)) return flash(ctx, await getDevice(ctx, id), body, actorId(a.actor));
      if (!together.edits) throw ApiError.of(400, 'Nothing to update: send name, notes, development, quarantined, groups, desired_firmware_version or signal');
      const changes: DeviceChanges = {};
      if ('name' in body) changes.name = body.name as string | null;
      if ('notes' in body) changes.notes = body.notes as string | null;
      if ('development' in body) changes.development = bool(body.development, 'development');
      if ('quarantined' in body) changes.quarantined = bool(body.quarantined, 'quarantined');
      // Every field is checked before anything is written: a refused edit changes nothing. (The store
      // checks the rest of `changes` in the one transaction that writes them; group names are checked here.)
      const groups = 'groups' in body ? list(body.groups, 'groups').map(groupName) : undefined;
      if (groups) await authorizeAlso(ctx.store, a, await groupingActions(ctx, a.device!.product.productId, groups));
      // With a lock (particle-api-js's updateDevice): checked with the rest, written in the same transaction.
      const lock = together.lock ? await lockOf(ctx, a.device!.product.productId, body) : null;
      if (lock) changes.lockedFirmware = lock.version;
      let d = await ctx.store.updateDevice(id, changes);
      if (groups) {
        await ctx.store.regroup(d.productId, [id], { set: groups });
        d = await getDevice(ctx, id);
      }
      // Quarantine holds its events back from now on (the broker's map), or lets them through again.
      if ('quarantined' in body) await ctx.fleet.refreshDevice(id);
      if (lock?.now) await ctx.ota.lockNow(id, d.productId, lock.version!, actorId(a.actor));
      // Its groups, development flag or quarantine may change the version it should run (a lock without
      // flash waits for its next connection, as alone).
      else if ('groups' in body || 'development' in body || 'quarantined' in body) ctx.ota.reconcile(id);
      const out = await withGroups(ctx, d);
      // Particle answers a rename with {id, name, updated_at}: keep those keys first.
      return { ...out, updated_at: new Date().toISOString() };
    }, { files: true }),
  ];
}

/** Removes a device from its product: its connection ends, its rows go. */
async function removeDevice(ctx: ApiContext, id: string): Promise<void> {
  await ctx.store.deleteDevice(id);
  ctx.fleet.dropDevice(id);
  await ctx.fleet.refreshDevice(id);
}

/** Unclaims a device: no owner, no customer; the customer's live access ends now. */
async function unclaim(ctx: ApiContext, id: string): Promise<void> {
  await ctx.store.setDeviceOwner(id, null);
  await ctx.store.unclaimDevice(id);
  await ctx.fleet.refreshDevice(id);
}

const USER_CLAIM = guard.device('device.add', 'body');

/** The request that releases anyone's claim on a device: the product team's unclaim. */
const releasePath = (d: { id: string; product: { productId: string } }): string => `DELETE /v1/products/${d.product.productId}/devices/${d.id}/owner`;

async function claimByCustomer(ctx: ApiContext, actor: Extract<Actor, { kind: 'customer' }>, body: Fields) {
  const id = typeof body.id === 'string' ? body.id.toLowerCase() : '';
  if (id === '') throw ApiError.of(400, 'The id field is required');
  const ref = isDeviceId(id) ? await ctx.store.deviceAccess(id) : null;
  const allowed = mayClaimById(actor, ref ? { productId: ref.product.productId, customerId: ref.customerId, ownerUserId: ref.ownerUserId } : null);
  const verdict = allowed
    ? { allow: true as const, reason: 'a device of the customer\'s product that no one else holds' }
    : { allow: false as const, status: 404, reason: 'not a device this customer may claim' };
  await ctx.store.audit(auditEntry(actor, 'device.claim', 'device', id, verdict, new Date()));
  if (!allowed) throw ApiError.of(404, 'Device not found');
  await ctx.store.claimDevice(id, actor.customerId);
  await ctx.fleet.refreshDevice(id);
  return { ok: true, id, customer_id: actor.customerId };
}

/** Particle's sort attributes of a product's device list. */
const SORT_ATTRS = ['deviceName', 'deviceId', 'firmwareVersion', 'lastConnection'];

/**
 * Particle's product device listing over `devices` (those the caller may
 * view): filters `deviceId`, `deviceName` (parts, any case), `groups` and
 * `quarantined` (true: only those, false: none of them), `sortAttr`/`sortDir`,
 * pages, and the customers of the devices shown.
 */
export async function deviceListing(ctx: ApiContext, q: URLSearchParams, devices: Device[], groups: Map<string, string[]>) {
  const quarantined = q.has('quarantined') ? bool(q.get('quarantined'), 'quarantined') : null;
  const idPart = (q.get('deviceId') ?? '').toLowerCase();
  const namePart = (q.get('deviceName') ?? '').toLowerCase();
  const groupFilter = q.get('groups') ? q.get('groups')!.split(',').map((g) => g.trim().toLowerCase()) : null;
  const found = devices.filter(
    (d) =>
      d.id.includes(idPart) &&
      (namePart === '' || (d.name ?? '').toLowerCase().includes(namePart)) &&
      (groupFilter === null || (groups.get(d.id) ?? []).some((g) => groupFilter.includes(g))) &&
      (quarantined === null || d.quarantined === quarantined),
  );
  const attr = q.get('sortAttr') ?? 'lastConnection';
  if (!SORT_ATTRS.includes(attr)) throw ApiError.of(400, 'sortAttr must be one of ' + SORT_ATTRS.join(', '));
  const sortDir = q.get('sortDir') ?? (attr === 'lastConnection' ? 'desc' : 'asc');
  if (sortDir !== 'asc' && sortDir !== 'desc') throw ApiError.of(400, 'sortDir must be asc or desc');
  const key = (d: Device): string | number =>
    attr === 'deviceName' ? d.name ?? '' : attr === 'deviceId' ? d.id : attr === 'firmwareVersion' ? d.firmwareVersion ?? -1 : d.lastHandshakeAt?.getTime() ?? 0;
  const dir = sortDir === 'desc' ? -1 : 1;
  found.sort((x, y) => (key(x) < key(y) ? -dir : key(x) > key(y) ? dir : 0));
  const { shown, meta } = paged(q, found);
  const held = await holders(ctx, shown);
  const releases = new Map<number, ProductReleases>();
  for (const d of shown) if (!releases.has(d.productId)) releases.set(d.productId, await ctx.store.productReleases(d.productId));
  return { devices: shown.map((d) => deviceObject(d, groups.get(d.id), held.of(d), releases.get(d.productId))), customers: held.customers(), meta };
}

export const deviceRoutes: Route[] = [
  // A user's personal space: the devices of personal products (an org's are at /v1/orgs/:org/devices, as the Console's space switcher).
  route('GET', '/v1/devices', guard.signedIn('lists only the devices decide() lets the actor view, in the personal space for a user'), async (req, ctx, { actor }) => {
    const out: ReturnType<typeof deviceObject>[] = [];
    for (const product of await visibleProducts(actor, ctx.store)) {
      // An org's product: only the devices the user claimed there (one query, not the org's fleet).
      const devices = inPersonalSpace(actor, product)
        ? await ctx.store.listDevices(product.productId)
        : actor.kind === 'user' ? await ctx.store.listDevicesClaimedBy(actor.userId, product.productId) : [];
      const seen = devices.filter((d) => seesDevice(actor, d.id, product, d.customerId));
      if (seen.length === 0) continue;
      const groups = await ctx.store.groupsOfDevices(product.productId);
      const held = await holders(ctx, seen);
      const releases = await ctx.store.productReleases(product.productId);
      for (const d of seen) out.push(deviceObject(d, groups.get(d.id), held.of(d), releases));
    }
    // Particle sorts by last handshake, newest first.
    return out.sort((a, b) => (b.last_handshake_at ?? '').localeCompare(a.last_handshake_at ?? ''));
  }),
  // Claim (Particle's POST /v1/devices {id}): a user, for a device of a product they may add devices to;
  // a customer, for a device of their product that no other customer holds (customers/claims.ts).
  route('POST', '/v1/devices', guard.signedIn('a user: device.add on the device (decide); a customer: mayClaimById'), async (req, ctx, { actor }) => {
    if (actor.kind === 'customer') return claimByCustomer(ctx, actor, await req.body());
    const a = await authorize(ctx.store, actor, USER_CLAIM, {}, req.body);
    if (a.actor.kind !== 'user') throw ApiError.of(403, 'Only users and customers claim devices');
    // A device held by someone else stays theirs: the team releases it first (DELETE .../devices/:id/owner).
    const d = (await ctx.store.getDevice(a.device!.id))!;
    if ((d.ownerUserId !== null && d.ownerUserId !== a.actor.userId) || d.customerId !== null) {
      throw ApiError.of(409, `Device ${d.id} is claimed by ${d.customerId !== null ? 'a customer' : 'another user'}; the product team releases it first (${releasePath(a.device!)})`);
    }
    await ctx.store.setDeviceOwner(d.id, a.actor.userId);
    // Its events reach the user's /v1/devices/events from now on.
    await ctx.fleet.refreshDevice(d.id);
    return { ok: true, id: d.id, user_id: a.actor.userId };
  }),
  // Particle's unclaim (particle-api-js removeDevice without a product): releases the caller's own claim,
  // no one else's; the product team releases any with DELETE /v1/products/:p/devices/:id/owner.
  route('DELETE', '/v1/devices/:id', guard.device('device.remove'), async (req, ctx, a) => {
    const d = (await ctx.store.getDevice(a.device!.id))!;
    const mine = a.actor.kind === 'user' && d.ownerUserId === a.actor.userId && d.customerId === null;
    if (!mine && (d.ownerUserId !== null || d.customerId !== null)) {
      throw ApiError.of(403, `Device ${d.id} is not claimed by you: the product team releases another's claim with ${releasePath(a.device!)}`);
    }
    if (mine) await unclaim(ctx, d.id);
    return { ok: true };
  }),
  ...devicePaths('/v1'),

  // The product forms.
  route('GET', '/v1/products/:product/devices', guard.product('device.view'), async (req, ctx, a) => {
    const productId = a.product!.productId;
    return deviceListing(ctx, req.url.searchParams, await ctx.store.listDevices(productId), await ctx.store.groupsOfDevices(productId));
  }),
  // Import: {ids: [...]} (or `id`). New devices get a secret, answered once in `secrets` (Flotilla: devices connect with it).
  // Particle's import: id, ids, or a file of device IDs (particle-api-js addDeviceToProduct({file})), one per line.
  route('POST', '/v1/products/:product/devices', guard.product('device.add'), async (req, ctx, a) => {
    const body = await req.body();
    const ids = isUpload(body.file)
      ? (await idsIn(body.file))
      : body.ids !== undefined ? list(body.ids, 'ids') : typeof body.id === 'string' ? [body.id] : null;
    if (!ids || ids.length === 0) throw ApiError.of(400, 'Send ids (a list of device ids), id, or a file with one device id per line');
    if (ids.length > 1000) throw ApiError.of(400, 'At most 1000 devices per import');
    const productId = a.product!.productId;
    const out = { updated: 0, updatedDeviceIds: [] as string[], existingDeviceIds: [] as string[], nonmemberDeviceIds: [] as string[], invalidDeviceIds: [] as string[], secrets: {} as Record<string, string> };
    for (const raw of ids) {
      const id = raw.trim().toLowerCase();
      if (!isDeviceId(id)) {
        out.invalidDeviceIds.push(raw);
        continue;
      }
      const existing = await ctx.store.deviceProduct(id);
      if (existing) {
        (existing.productId === productId ? out.existingDeviceIds : out.nonmemberDeviceIds).push(id);
        continue;
      }
      await ctx.store.createDevice({ id, productId });
      const secret = newDeviceSecret();
      await ctx.store.setDeviceSecret(id, secret);
      out.secrets[id] = secret;
      out.updatedDeviceIds.push(id);
      out.updated++;
    }
    return out;
  }, { files: true, fileLimit: IMPORT_FILE_MAX }),
  // Batch group assignment: {action: "groups", devices: [...], metadata: {add: [...], remove: [...]}}.
  route('PUT', '/v1/products/:product/devices', guard.product('group.edit'), async (req, ctx, a) => {
    const body = await req.body();
    if (body.action !== 'groups') throw ApiError.of(400, 'action must be "groups"');
    // Device ids in any case, as every other route takes them.
    const devices = list(body.devices, 'devices').map((d) => d.toLowerCase());
    const meta = (body.metadata ?? {}) as { add?: unknown; remove?: unknown };
    if (typeof meta !== 'object' || meta === null) throw ApiError.of(400, 'metadata must be {add, remove}');
    const add = meta.add === undefined ? [] : list(meta.add, 'metadata.add');
    const remove = meta.remove === undefined ? [] : list(meta.remove, 'metadata.remove');
    // The guard decided group.edit; what the move may also do is decided too.
    await authorizeProductAlso(ctx.store, a, (await groupingActions(ctx, a.product!.productId, add.map(groupName))).filter((x) => x !== 'group.edit'));
    const r = await ctx.store
      .regroup(a.product!.productId, devices, { add, remove })
      ;
    // Devices of another product are reported as Particle reports unknown ones: not updated.
    return { ok: true, devices: devices.filter((d) => !r.skipped.includes(d)), invalid_devices: r.skipped };
  }),
  route('DELETE', '/v1/products/:product/devices/:id', guard.device('device.remove'), async (req, ctx, a) => {
    // Particle's `deny` keeps a removed device from joining the product again by connecting with its
    // firmware. Here no device joins by connecting (an import gives it its secret, removal takes it):
    // every removed device is shut out, and the flag is only checked.
    flag((await req.body()).deny, 'deny');
    await removeDevice(ctx, a.device!.id);
    return { status: 204, body: null };
  }),
  route('DELETE', '/v1/products/:product/devices/:id/owner', guard.device('device.remove'), async (req, ctx, a) => {
    await unclaim(ctx, a.device!.id);
    return { status: 204, body: null };
  }),
  ...devicePaths('/v1/products/:product'),

  // The org forms.
  route('DELETE', '/v1/orgs/:org/devices/:id', guard.device('device.remove'), async (req, ctx, a) => {
    await removeDevice(ctx, a.device!.id);
    return { status: 204, body: null };
  }),
  ...devicePaths('/v1/orgs/:org'),
];
