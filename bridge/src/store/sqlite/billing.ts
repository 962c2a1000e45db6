/**
 * Billing information: an org's, or a personal product's (an org's products,
 * and its whitelisted users' personal products, are billed to the org; the
 * routes say which account applies).
 */
import { StoreError } from '../store.js';
import type { BillingInfo, BillingInfoChanges, BillingOwner, BillingStore } from '../store.js';
import { productKey, refusing } from './context.js';
import type { Ctx } from './context.js';

interface AccountRaw {
  name: string | null;
  email: string | null;
  address: string | null;
  country: string | null;
  tax_id: string | null;
  updated_by: string | null;
  updated_at: number;
}

/** Each field: its column, longest value, and the shape it must have. */
const FIELDS = {
  name: { column: 'name', max: 255, shape: null },
  email: { column: 'email', max: 254, shape: /^[^\s@]+@[^\s@]+\.[^\s@]+$/ },
  address: { column: 'address', max: 1000, shape: null },
  country: { column: 'country', max: 2, shape: /^[A-Z]{2}$/ },
  taxId: { column: 'tax_id', max: 64, shape: /^[A-Za-z0-9][A-Za-z0-9 .\-/]*$/ },
} as const;

type Field = keyof typeof FIELDS;

function info(r: AccountRaw): BillingInfo {
  return { name: r.name, email: r.email, address: r.address, country: r.country, taxId: r.tax_id, updatedBy: r.updated_by, updatedAt: new Date(r.updated_at) };
}

/** A field's stored value: trimmed, '' and null clear it; the country upper-cased. */
function clean(field: Field, v: unknown): string | null {
  const f = FIELDS[field];
  // Messages name the column, as the API's fields are named (tax_id).
  if (v === null) return null;
  if (typeof v !== 'string') throw new StoreError('invalid', `${f.column} must be text`);
  const s = field === 'country' ? v.trim().toUpperCase() : v.trim();
  if (s === '') return null;
  if (f.shape && !f.shape.test(s)) {
    throw new StoreError('invalid', field === 'email' ? 'email must be an e-mail address' : field === 'country' ? 'country must be a two-letter ISO 3166 code' : `${f.column} has characters it may not have`);
  }
  if (s.length > f.max) throw new StoreError('invalid', `${f.column} is longer than ${f.max} characters`);
  return s;
}

export function billingStore(ctx: Ctx): Pick<BillingStore, 'billingInfo' | 'setBillingInfo'> {
  const { db } = ctx;
  const ofOrg = db.prepare<AccountRaw>('SELECT * FROM billing_accounts WHERE org_id = ?');
  const ofProduct = db.prepare<AccountRaw>('SELECT * FROM billing_accounts WHERE product_id = ?');
  const orgExists = db.prepare<{ one: number }>('SELECT 1 AS one FROM organizations WHERE id = ?');
  const productExists = db.prepare<{ one: number }>('SELECT 1 AS one FROM products WHERE id = ?');
  const insert = db.prepare(
    'INSERT INTO billing_accounts (org_id, product_id, name, email, address, country, tax_id, updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const SET = 'UPDATE billing_accounts SET name = ?, email = ?, address = ?, country = ?, tax_id = ?, updated_by = ?, updated_at = ?';
  const updateOrg = db.prepare(SET + ' WHERE org_id = ?');
  const updateProduct = db.prepare(SET + ' WHERE product_id = ?');

  const owner = (of: BillingOwner): { orgId: string | null; productId: number | null } => {
    if (of.orgId !== undefined) {
      if (typeof of.orgId !== 'string' || !orgExists.get(of.orgId)) throw new StoreError('not_found', `no org ${String(of.orgId)}`);
      return { orgId: of.orgId, productId: null };
    }
    const id = productKey(of.productId);
    if (!productExists.get(id)) throw new StoreError('not_found', `no product ${id}`);
    return { orgId: null, productId: id };
  };
  const current = (o: { orgId: string | null; productId: number | null }) => (o.orgId !== null ? ofOrg.get(o.orgId) : ofProduct.get(o.productId));

  const set = db.transaction((o: { orgId: string | null; productId: number | null }, values: Record<Field, string | null>, by: string): BillingInfo => {
    const now = ctx.now();
    const row = [values.name, values.email, values.address, values.country, values.taxId, by, now] as const;
    refusing({ foreignKey: `no user ${by}` }, () => {
      if (!current(o)) insert.run(o.orgId, o.productId, ...row);
      else if (o.orgId !== null) updateOrg.run(...row, o.orgId);
      else updateProduct.run(...row, o.productId);
    });
    return info(current(o) as AccountRaw);
  });

  return {
    async billingInfo(of) {
      const r = current(owner(of));
      return r ? info(r) : null;
    },
    async setBillingInfo(of, changes: BillingInfoChanges, updatedBy) {
      if (changes === null || typeof changes !== 'object') throw new StoreError('invalid', 'billing information must be an object');
      const o = owner(of);
      const before = current(o);
      const values: Record<Field, string | null> = {
        name: before?.name ?? null, email: before?.email ?? null, address: before?.address ?? null, country: before?.country ?? null, taxId: before?.tax_id ?? null,
      };
      for (const field of Object.keys(FIELDS) as Field[]) if (changes[field] !== undefined) values[field] = clean(field, changes[field]);
      return set.immediate(o, values, updatedBy);
    },
  };
}
