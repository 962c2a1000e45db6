/**
 * SIM cards of a product: added active (as Particle imports them), deactivated and activated again, with a
 * data limit; and the data each used per day, as its carrier reports it.
 */
import { isDay, StoreError } from '../store.js';
import type { BillingStore, SimCard, SimStore } from '../store.js';
import { productKey, refusing } from './context.js';
import type { Ctx } from './context.js';

interface SimRaw {
  iccid: string;
  product_id: number;
  status: SimCard['status'];
  data_limit: number | null;
  created_at: number;
}

/** ITU-T E.118: 19 or 20 digits, the last a Luhn check digit. */
export function isIccid(s: string): boolean {
  if (!/^[0-9]{19,20}$/.test(s)) return false;
  let sum = 0;
  for (let i = 0; i < s.length; i++) {
    let d = s.charCodeAt(s.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

function sim(r: SimRaw): SimCard {
  return { iccid: r.iccid, productId: r.product_id, status: r.status, dataLimit: r.data_limit, createdAt: new Date(r.created_at) };
}

/** A carrier's daily figure: bytes in a day, at most 1 TB (no SIM moves more; a typo in a unit would). */
const MAX_DAY_BYTES = 1e12;

export function simStore(ctx: Ctx): SimStore & Pick<BillingStore, 'recordSimData' | 'simDataUsage' | 'fleetSimDataUsage'> {
  const { db } = ctx;
  const list = db.prepare<SimRaw>('SELECT * FROM sim_cards WHERE product_id = ? ORDER BY iccid');
  const byId = db.prepare<SimRaw>('SELECT * FROM sim_cards WHERE iccid = ?');
  // Imported active, as Particle's import does ("SIM cards will be activated upon import").
  const insert = db.prepare("INSERT INTO sim_cards (iccid, product_id, status, data_limit, created_at) VALUES (?, ?, 'active', NULL, ?)");
  const setStatus = db.prepare('UPDATE sim_cards SET status = ? WHERE iccid = ?');
  const setLimit = db.prepare('UPDATE sim_cards SET data_limit = ? WHERE iccid = ?');
  const remove = db.prepare('DELETE FROM sim_cards WHERE iccid = ?');
  // A carrier's figure for a day replaces the one it sent before (its reports are running totals of the day).
  const setDayData = db.prepare(
    `INSERT INTO sim_data_daily (product_id, iccid, day, bytes) SELECT product_id, iccid, ?, ? FROM sim_cards WHERE iccid = ?
     ON CONFLICT (product_id, iccid, day) DO UPDATE SET bytes = excluded.bytes`,
  );
  const dataOf = db.prepare<{ day: string; bytes: number }>(
    `SELECT d.day AS day, d.bytes AS bytes FROM sim_data_daily d JOIN sim_cards s ON s.iccid = d.iccid AND s.product_id = d.product_id
     WHERE d.iccid = ? AND d.day >= ? AND d.day <= ? ORDER BY d.day`,
  );
  // The product's figures whatever became of its SIMs since (removed, moved): they stay with it, as in its usage view.
  const dataOfProduct = db.prepare<{ day: string; bytes: number }>(
    'SELECT day, SUM(bytes) AS bytes FROM sim_data_daily WHERE product_id = ? AND day >= ? AND day <= ? GROUP BY day ORDER BY day',
  );
  const add = db.transaction((productId: number, iccids: readonly string[]) => {
    const out = { added: [] as string[], existing: [] as string[], invalid: [] as string[] };
    for (const raw of iccids) {
      const iccid = typeof raw === 'string' ? raw.trim() : '';
      const held = isIccid(iccid) ? byId.get(iccid) : undefined;
      // Another product's SIM cannot be added: invalid here, not `existing`, which reads as already in this product.
      if (!isIccid(iccid) || (held && held.product_id !== productId)) out.invalid.push(String(raw));
      else if (held) out.existing.push(iccid);
      else {
        refusing({ foreignKey: `no product ${productId}` }, () => insert.run(iccid, productId, ctx.now()));
        out.added.push(iccid);
      }
    }
    return out;
  });

  return {
    async listSims(productId) {
      return list.all(productKey(productId)).map(sim);
    },
    async getSim(iccid) {
      const r = typeof iccid === 'string' ? byId.get(iccid) : undefined;
      return r ? sim(r) : null;
    },
    async addSims(productId, iccids) {
      if (!Array.isArray(iccids)) throw new StoreError('invalid', 'sims must be a list of ICCIDs');
      return add.immediate(productKey(productId), iccids);
    },
    async updateSim(iccid, changes) {
      if (changes.status !== undefined && changes.status !== 'active' && changes.status !== 'inactive') throw new StoreError('invalid', 'status is active or inactive');
      const limit = changes.dataLimit;
      if (limit !== undefined && limit !== null && !(Number.isInteger(limit) && limit >= 1 && limit <= 1000000)) throw new StoreError('invalid', 'a data limit is a whole number of MB from 1 to 1000000');
      const run = db.transaction(() => {
        if (!byId.get(iccid)) throw new StoreError('not_found', `no SIM ${iccid}`);
        if (changes.status !== undefined) setStatus.run(changes.status, iccid);
        if (limit !== undefined) setLimit.run(limit, iccid);
      });
      run.immediate();
      return sim(byId.get(iccid) as SimRaw);
    },
    async removeSim(iccid) {
      return remove.run(iccid).changes > 0;
    },
    async recordSimData(iccid, day, bytes) {
      if (!isDay(day)) throw new StoreError('invalid', 'day must be a date, YYYY-MM-DD');
      if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > MAX_DAY_BYTES) throw new StoreError('invalid', 'bytes must be a whole number from 0 to ' + MAX_DAY_BYTES);
      if (setDayData.run(day, bytes, iccid).changes === 0) throw new StoreError('not_found', `no SIM ${iccid}`);
    },
    async simDataUsage(iccid, from, to) {
      if (!isDay(from) || !isDay(to)) throw new StoreError('invalid', 'dates are YYYY-MM-DD');
      return dataOf.all(iccid, from, to).map((r) => ({ day: r.day, bytes: Number(r.bytes) }));
    },
    async fleetSimDataUsage(productId, from, to) {
      if (!isDay(from) || !isDay(to)) throw new StoreError('invalid', 'dates are YYYY-MM-DD');
      return dataOfProduct.all(productKey(productId), from, to).map((r) => ({ day: r.day, bytes: Number(r.bytes) }));
    },
  };
}
