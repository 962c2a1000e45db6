/** Device groups of a product, and which devices are in them. */
import { groupName, StoreError } from '../store.js';
import type { DeviceGroup, GroupStore } from '../store.js';
import { productKey, refusing } from './context.js';
import type { Ctx } from './context.js';

interface GroupRaw {
  id: number;
  name: string;
  description: string | null;
  color: string | null;
  devices: number;
}

const COLOR = /^#[0-9a-fA-F]{6}$/;

function text(v: unknown, what: string, max: number): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string' || v.length > max) throw new StoreError('invalid', `${what} must be text of at most ${max} characters`);
  return v.trim() === '' ? null : v.trim();
}

function color(v: unknown): string | null {
  if (v === null || v === undefined || v === '') return null;
  if (typeof v !== 'string' || !COLOR.test(v)) throw new StoreError('invalid', 'color must be #rrggbb');
  return v.toLowerCase();
}

function group(r: GroupRaw): DeviceGroup {
  return { name: r.name, description: r.description, color: r.color, devices: r.devices };
}

export function groupStore(ctx: Ctx): GroupStore {
  const { db } = ctx;
  const SELECT = `SELECT g.id, g.name, g.description, g.color, (SELECT COUNT(*) FROM device_group_members m WHERE m.group_id = g.id) AS devices FROM device_groups g`;
  const list = db.prepare<GroupRaw>(`${SELECT} WHERE g.product_id = ? ORDER BY g.name`);
  const one = db.prepare<GroupRaw>(`${SELECT} WHERE g.product_id = ? AND g.name = ?`);
  const insert = db.prepare('INSERT INTO device_groups (product_id, name, description, color) VALUES (?, ?, ?, ?)');
  const update = db.prepare('UPDATE device_groups SET name = ?, description = ?, color = ? WHERE id = ?');
  const remove = db.prepare('DELETE FROM device_groups WHERE product_id = ? AND name = ?');
  const deviceProduct = db.prepare<{ product_id: number }>('SELECT product_id FROM devices WHERE id = ?');
  const join = db.prepare('INSERT INTO device_group_members (group_id, device_id) VALUES (?, ?) ON CONFLICT DO NOTHING');
  const leave = db.prepare('DELETE FROM device_group_members WHERE group_id = ? AND device_id = ?');
  const leaveAll = db.prepare('DELETE FROM device_group_members WHERE device_id = ?');
  const membership = db.prepare<{ device_id: string; name: string }>(
    `SELECT m.device_id AS device_id, g.name AS name FROM device_group_members m JOIN device_groups g ON g.id = m.group_id
     WHERE g.product_id = ? ORDER BY m.device_id, g.name`,
  );

  const ofDevice = db.prepare<{ name: string }>(
    'SELECT g.name AS name FROM device_group_members m JOIN device_groups g ON g.id = m.group_id WHERE m.device_id = ? ORDER BY g.name',
  );

  /** The group's row id, creating the group when asked to. */
  function idOf(productId: number, name: string, create: boolean): number | null {
    const r = one.get(productId, name);
    if (r) return r.id;
    if (!create) return null;
    return Number(refusing({ foreignKey: `no product ${productId}` }, () => insert.run(productId, name, null, null)).lastInsertRowid);
  }

  const regroup = db.transaction((productId: number, deviceIds: readonly string[], add: string[], remove: string[], set: string[] | null) => {
    const skipped: string[] = [];
    const addIds = add.map((n) => idOf(productId, n, true) as number);
    const setIds = set ? set.map((n) => idOf(productId, n, true) as number) : null;
    const removeIds = remove.map((n) => idOf(productId, n, false)).filter((x): x is number => x !== null);
    for (const d of deviceIds) {
      if (deviceProduct.get(d)?.product_id !== productId) {
        skipped.push(d);
        continue;
      }
      if (setIds) {
        leaveAll.run(d);
        for (const g of setIds) join.run(g, d);
      }
      for (const g of addIds) join.run(g, d);
      for (const g of removeIds) leave.run(g, d);
    }
    return { skipped };
  });

  return {
    async listGroups(productId) {
      return list.all(productKey(productId)).map(group);
    },

    async getGroup(productId, name) {
      const r = typeof name === 'string' ? one.get(productKey(productId), name.trim().toLowerCase()) : undefined;
      return r ? group(r) : null;
    },

    async createGroup(productId, g) {
      const p = productKey(productId);
      const name = groupName(g.name);
      const description = text(g.description, 'description', 1024);
      const c = color(g.color);
      refusing({ unique: `group ${name} exists`, foreignKey: `no product ${p}` }, () => insert.run(p, name, description, c));
      return group(one.get(p, name) as GroupRaw);
    },

    async updateGroup(productId, name, changes) {
      const p = productKey(productId);
      const r = typeof name === 'string' ? one.get(p, name.trim().toLowerCase()) : undefined;
      if (!r) throw new StoreError('not_found', `no group ${name}`);
      const next = changes.name !== undefined ? groupName(changes.name) : r.name;
      const description = changes.description !== undefined ? text(changes.description, 'description', 1024) : r.description;
      const c = changes.color !== undefined ? color(changes.color) : r.color;
      refusing({ unique: `group ${next} exists` }, () => update.run(next, description, c, r.id));
      return group(one.get(p, next) as GroupRaw);
    },

    async deleteGroup(productId, name) {
      return typeof name === 'string' && remove.run(productKey(productId), name.trim().toLowerCase()).changes > 0;
    },

    async regroup(productId, deviceIds, change) {
      const p = productKey(productId);
      const names = (v: readonly string[] | undefined) => {
        if (v === undefined) return [];
        if (!Array.isArray(v)) throw new StoreError('invalid', 'groups must be a list of names');
        return v.map(groupName);
      };
      if (!Array.isArray(deviceIds) || deviceIds.some((d) => typeof d !== 'string')) throw new StoreError('invalid', 'devices must be a list of device ids');
      return regroup.immediate(p, deviceIds, names(change.add), names(change.remove), change.set !== undefined ? names(change.set) : null);
    },

    async deviceGroups(deviceId) {
      return ofDevice.all(deviceId).map((r) => r.name);
    },

    async groupsOfDevices(productId) {
      const out = new Map<string, string[]>();
      for (const r of membership.all(productKey(productId))) {
        const l = out.get(r.device_id);
        if (l) l.push(r.name);
        else out.set(r.device_id, [r.name]);
      }
      return out;
    },
  };
}
