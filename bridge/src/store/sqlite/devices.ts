/** Devices, their credentials, and what the broker learns about them (hello, presence). */
import { UNSAFE_IN_TEXT } from '../../text.js';
import { isDeviceId, type VarType } from '@flotilla/protocol';
import { hashSecret, verifySecret } from '../secrets.js';
import { StoreError } from '../store.js';
import type { Device, DeviceStore } from '../store.js';
import { msOf, parseJson, productKey, refusing, toDate } from './context.js';
import type { Ctx } from './context.js';
import { version } from './firmware.js';
import { PRODUCT_REF_SQL, productRefOf } from './teams.js';

/** A device name as given (trimmed; '' is none), or why it cannot be one. */
function deviceName(v: unknown): string | null {
  if (typeof v !== 'string') throw new StoreError('invalid', 'a device name must be text');
  const t = v.trim();
  if (t === '') return null;
  if (t.length > 64) throw new StoreError('invalid', 'a device name is longer than 64 characters');
  if (UNSAFE_IN_TEXT.test(t)) throw new StoreError('invalid', 'a device name may not have control, zero-width or bidirectional-override characters');
  // In a URL path, . and .. are steps, not names: the device could never be reached by it.
  if (/^\.+$/.test(t)) throw new StoreError('invalid', 'a device name may not be only dots: in a URL that reads as a path step');
  // particle-cli puts the name in the path as it is: these would end or split it there.
  if (/[/?#%\\]/.test(t)) throw new StoreError('invalid', 'a device name may not have / ? # % or \\: particle-cli puts it in a URL as it is');
  // GET /v1/devices/events is the event stream of your devices, not a device called events.
  if (t.toLowerCase() === 'events') throw new StoreError('invalid', 'a device may not be named events: /v1/devices/events is the event stream');
  // particle-cli and the API take a name or an ID in one place: a name that reads as an ID would shadow one.
  if (isDeviceId(t.toLowerCase())) throw new StoreError('invalid', 'a device name may not be 24 hex characters: that reads as a device ID');
  return t;
}

interface DeviceRaw {
  id: string;
  name: string | null;
  notes: string | null;
  product_id: number;
  owner_user_id: string | null;
  customer_id: string | null;
  firmware_version: number | null;
  variables: string;
  functions: string;
  online: number;
  last_heard: number | null;
  last_handshake_at: number | null;
  last_ip_address: string | null;
  development: number;
  quarantined: number;
  locked_firmware: number | null;
  created_at: number;
}

function device(r: DeviceRaw): Device {
  return {
    id: r.id,
    name: r.name,
    notes: r.notes,
    productId: r.product_id,
    ownerUserId: r.owner_user_id,
    customerId: r.customer_id,
    firmwareVersion: r.firmware_version,
    variables: parseJson<{ [name: string]: VarType }>(r.variables),
    functions: parseJson<string[]>(r.functions),
    online: r.online !== 0,
    lastHeard: toDate(r.last_heard),
    lastHandshakeAt: toDate(r.last_handshake_at),
    lastIpAddress: r.last_ip_address,
    development: r.development !== 0,
    quarantined: r.quarantined !== 0,
    lockedFirmware: r.locked_firmware,
    createdAt: new Date(r.created_at),
  };
}

function notFound(deviceId: string): StoreError {
  return new StoreError('not_found', `no device ${deviceId}`);
}

/** last_heard only moves forward: reports handled out of order do not turn the clock back. */
const HEARD = `last_heard = CASE WHEN last_heard IS NULL OR last_heard < ? THEN ? ELSE last_heard END`;

export function deviceStore(ctx: Ctx): DeviceStore {
  const { db } = ctx;
  const insert = db.prepare(
    `INSERT INTO devices (id, name, notes, product_id, owner_user_id, customer_id, firmware_version, variables, functions,
       online, last_heard, last_handshake_at, development, quarantined, locked_firmware, created_at)
     VALUES (?, ?, NULL, ?, NULL, NULL, NULL, '{}', '[]', 0, NULL, NULL, 0, 0, NULL, ?)`,
  );
  const byId = ctx.cached<DeviceRaw>('SELECT * FROM devices WHERE id = ?');
  const byProduct = db.prepare<DeviceRaw>('SELECT * FROM devices WHERE product_id = ? ORDER BY id');
  const claimedBy = db.prepare<DeviceRaw>('SELECT * FROM devices WHERE owner_user_id = ? AND product_id = ? ORDER BY id');
  const refOfDevice = ctx.cached<{ id: number; owner_user_id: string | null; org_id: string | null; org_owner_user_id: string | null; customer_id: string | null; device_owner_user_id: string | null; firmware_version: number | null; quarantined: number }>(
    `${PRODUCT_REF_SQL.replace('SELECT ', 'SELECT d.customer_id AS customer_id, d.owner_user_id AS device_owner_user_id, d.firmware_version AS firmware_version, d.quarantined AS quarantined, ')} JOIN devices d ON d.product_id = p.id WHERE d.id = ?`,
  );
  const upsertSecret = db.prepare(
    `INSERT INTO device_credentials (device_id, secret_hash, cert_fingerprint, revoked_at) VALUES (?, ?, NULL, NULL)
     ON CONFLICT (device_id) DO UPDATE SET secret_hash = excluded.secret_hash, revoked_at = NULL`,
  );
  const credentials = db.prepare<{ secret_hash: string | null; revoked_at: number | null }>(
    'SELECT secret_hash, revoked_at FROM device_credentials WHERE device_id = ?',
  );
  const hello = db.prepare(
    `UPDATE devices SET firmware_version = ?, variables = ?, functions = ?, online = 1, last_handshake_at = ?, ${HEARD} WHERE id = ?`,
  );
  const online = db.prepare(`UPDATE devices SET online = 1, last_ip_address = COALESCE(?, last_ip_address), ${HEARD} WHERE id = ?`);
  // An offline observed before the latest handshake belongs to an older connection: the device is back, leave it online.
  const offline = db.prepare(
    'UPDATE devices SET online = CASE WHEN last_handshake_at IS NOT NULL AND last_handshake_at > ? THEN online ELSE 0 END WHERE id = ?',
  );
  const allOffline = db.prepare('UPDATE devices SET online = 0 WHERE online = 1');
  const heard = db.prepare(`UPDATE devices SET ${HEARD} WHERE id = ?`);
  const rename = db.prepare('UPDATE devices SET name = ? WHERE id = ?');
  // Particle keeps names unique within one account's devices (not across a product's): any case.
  const namesake = db.prepare<{ id: string }>(
    'SELECT d.id FROM devices d JOIN devices me ON me.id = ? WHERE d.owner_user_id = me.owner_user_id AND d.id <> me.id AND d.name = ? COLLATE NOCASE LIMIT 1',
  );
  const setNotes = db.prepare('UPDATE devices SET notes = ? WHERE id = ?');
  const setDevelopment = db.prepare('UPDATE devices SET development = ? WHERE id = ?');
  const setQuarantined = db.prepare('UPDATE devices SET quarantined = ? WHERE id = ?');
  const setLocked = db.prepare('UPDATE devices SET locked_firmware = ? WHERE id = ?');
  const setOwner = db.prepare('UPDATE devices SET owner_user_id = ? WHERE id = ?');
  // Child rows go by ON DELETE CASCADE (credentials, vitals, errors, group memberships).
  const remove = db.prepare('DELETE FROM devices WHERE id = ?');

  return {
    async createDevice(input) {
      const id = input.id;
      if (typeof id !== 'string' || !isDeviceId(id)) throw new StoreError('invalid', 'a device id is 24 lowercase hex characters');
      const productId = productKey(input.productId);
      const name = input.name === undefined || input.name === null ? null : deviceName(input.name);
      refusing({ unique: `device ${id} exists`, foreignKey: `no product ${productId}` }, () =>
        insert.run(id, name, productId, ctx.now()),
      );
      return device(byId.get(id) as DeviceRaw);
    },

    // Reads of presence and firmware see the writes still queued for the group commit.
    async getDevice(id) {
      ctx.commit.flush();
      const r = byId.get(id);
      return r ? device(r) : null;
    },

    async deviceProduct(deviceId) {
      const r = refOfDevice.get(deviceId);
      return r ? productRefOf(r) : null;
    },

    async deviceAccess(deviceId) {
      const r = refOfDevice.get(deviceId);
      return r ? { product: productRefOf(r), customerId: r.customer_id, ownerUserId: r.device_owner_user_id, firmwareVersion: r.firmware_version, quarantined: r.quarantined !== 0 } : null;
    },

    async listDevicesClaimedBy(userId, productId) {
      ctx.commit.flush();
      return claimedBy.all(userId, productKey(productId)).map(device);
    },

    async listDevices(productId) {
      ctx.commit.flush();
      return byProduct.all(productKey(productId)).map(device);
    },

    async setDeviceSecret(deviceId, secret) {
      if (typeof secret !== 'string' || secret.length === 0) throw new StoreError('invalid', 'a device secret must not be empty');
      const hash = await hashSecret(secret, ctx.deviceSecretCost);
      refusing({ foreignKey: `no device ${deviceId}` }, () => upsertSecret.run(deviceId, hash));
    },

    async verifyDeviceSecret(deviceId, secret) {
      const c = typeof deviceId === 'string' ? credentials.get(deviceId) : undefined;
      const hash = c && c.revoked_at === null ? c.secret_hash : null;
      // Always one scrypt, so an unknown device answers as slowly as a wrong secret.
      return verifySecret(typeof secret === 'string' ? secret : '', hash, ctx.deviceSecretCost);
    },

    // Hellos and presence come at the devices' pace (all at once after an outage): group-committed.
    async recordHello(deviceId, h, at, handshakeAt = at) {
      const t = msOf(at, 'at');
      const handshake = msOf(handshakeAt, 'handshakeAt');
      const variables: { [name: string]: VarType } = {};
      for (const v of h.variables) variables[v.name] = v.type;
      const [vars, fns] = [JSON.stringify(variables), JSON.stringify(h.functions)];
      await ctx.commit(() => {
        if (hello.run(h.firmware, vars, fns, handshake, t, t, deviceId).changes === 0) throw notFound(deviceId);
      });
    },

    async setAllOffline() {
      return allOffline.run().changes;
    },

    async setOnline(deviceId, isOnline, at, ip = null) {
      const t = msOf(at, 'at');
      await ctx.commit(() => {
        if ((isOnline ? online.run(ip, t, t, deviceId) : offline.run(t, deviceId)).changes === 0) throw notFound(deviceId);
      });
    },

    async updateDevice(deviceId, changes) {
      const clean = (v: string | null | undefined, what: string, max: number): string | null | undefined => {
        if (v === undefined || v === null) return v;
        if (typeof v !== 'string') throw new StoreError('invalid', what + ' must be text');
        const t = v.trim();
        if (t.length > max) throw new StoreError('invalid', what + ' is longer than ' + max + ' characters');
        return t === '' ? null : t;
      };
      const flag = (v: boolean | undefined, what: string): number | undefined => {
        if (v === undefined) return undefined;
        if (typeof v !== 'boolean') throw new StoreError('invalid', what + ' must be true or false');
        return v ? 1 : 0;
      };
      const name = changes.name === undefined || changes.name === null ? changes.name : deviceName(changes.name);
      const notes = clean(changes.notes, 'device notes', 4096);
      const development = flag(changes.development, 'development');
      const quarantined = flag(changes.quarantined, 'quarantined');
      const locked = changes.lockedFirmware;
      if (locked !== undefined && locked !== null) version(locked);
      const run = db.transaction(() => {
        if (!byId.get(deviceId)) throw notFound(deviceId);
        if (name) {
          const other = namesake.get(deviceId, name);
          if (other) throw new StoreError('conflict', `another device of this account is named ${JSON.stringify(name)} (${other.id}); names are unique within an account`);
        }
        if (name !== undefined) rename.run(name, deviceId);
        if (notes !== undefined) setNotes.run(notes, deviceId);
        if (development !== undefined) setDevelopment.run(development, deviceId);
        if (quarantined !== undefined) setQuarantined.run(quarantined, deviceId);
        if (locked !== undefined) setLocked.run(locked, deviceId);
      });
      run();
      return device(byId.get(deviceId) as DeviceRaw);
    },

    async deleteDevice(deviceId) {
      return remove.run(deviceId).changes > 0;
    },

    // A device claimed into an account that already has its name gets the first free "name-N":
    // the claim is what the user asked for, and names stay unique within the account.
    async setDeviceOwner(deviceId, userId) {
      const run = db.transaction(() => {
        if (refusing({ foreignKey: `no user ${userId}` }, () => setOwner.run(userId, deviceId)).changes === 0) throw notFound(deviceId);
        const name = (byId.get(deviceId) as DeviceRaw).name;
        if (userId === null || name === null || !namesake.get(deviceId, name)) return;
        for (let n = 2; ; n++) {
          const suffix = '-' + n;
          const next = name.slice(0, 64 - suffix.length).trimEnd() + suffix;
          if (!namesake.get(deviceId, next)) return void rename.run(next, deviceId);
        }
      });
      run();
    },

    async touchMany(list) {
      const run = db.transaction((entries: ReadonlyArray<readonly [string, Date]>) => {
        for (const [id, at] of entries) {
          const t = msOf(at, 'at');
          heard.run(t, t, id);
        }
      });
      run(list);
    },

    async touch(deviceId, at) {
      const t = msOf(at, 'at');
      if (heard.run(t, t, deviceId).changes === 0) throw notFound(deviceId);
    },
  };
}
