/**
 * Organizations beyond their team: handing one over to a new Owner, moving
 * personal products into one (transfer requests, accepted in one
 * transaction), and the users whose personal space it pays for.
 */
import type { Role } from '@flotilla/protocol';
import { transferCascade } from '../../policy/orgs.js';
import { newId } from '../secrets.js';
import { StoreError } from '../store.js';
import type { BilledUser, Org, OrgStore, ProductTransfer, TeamMember, TransferOutcome, TransferState } from '../store.js';
import { productKey, refusing, usernameOf } from './context.js';
import type { Ctx } from './context.js';

interface TransferRaw {
  id: string;
  product_id: number;
  org_id: string;
  requested_by: string;
  state: TransferState;
  decided_by: string | null;
  created_at: number;
  decided_at: number | null;
}

interface BilledRaw {
  user_id: string;
  org_id: string;
  added_by: string | null;
  created_at: number;
}

function transfer(r: TransferRaw): ProductTransfer {
  return {
    id: r.id, productId: r.product_id, orgId: r.org_id, requestedBy: r.requested_by, state: r.state,
    decidedBy: r.decided_by, createdAt: new Date(r.created_at), decidedAt: r.decided_at === null ? null : new Date(r.decided_at),
  };
}

function billed(r: BilledRaw): BilledUser {
  return { userId: r.user_id, orgId: r.org_id, addedBy: r.added_by, createdAt: new Date(r.created_at) };
}

export function orgStore(ctx: Ctx): OrgStore {
  const { db } = ctx;
  const orgById = db.prepare<{ id: string; name: string; slug: string; owner_user_id: string; created_at: number }>('SELECT * FROM organizations WHERE id = ?');
  const username = usernameOf(db);
  const orgRole = db.prepare<{ role: Role }>('SELECT role FROM org_memberships WHERE org_id = ? AND user_id = ?');
  const setOwner = db.prepare('UPDATE organizations SET owner_user_id = ? WHERE id = ?');
  const deleteOrgMember = db.prepare('DELETE FROM org_memberships WHERE org_id = ? AND user_id = ?');
  const insertOrgMember = db.prepare('INSERT INTO org_memberships (org_id, user_id, role) VALUES (?, ?, ?)');

  const productRow = db.prepare<{ id: number; owner_user_id: string | null; org_id: string | null }>('SELECT id, owner_user_id, org_id FROM products WHERE id = ?');
  const insertTransfer = db.prepare(
    "INSERT INTO product_transfers (id, product_id, org_id, requested_by, state, decided_by, created_at, decided_at) VALUES (?, ?, ?, ?, 'pending', NULL, ?, NULL)",
  );
  const transferById = db.prepare<TransferRaw>('SELECT * FROM product_transfers WHERE id = ?');
  const pendingOfProduct = db.prepare<TransferRaw>("SELECT * FROM product_transfers WHERE product_id = ? AND state = 'pending'");
  const transfersOfProduct = db.prepare<TransferRaw>('SELECT * FROM product_transfers WHERE product_id = ? ORDER BY created_at DESC, id');
  const transfersOfOrg = db.prepare<TransferRaw>('SELECT * FROM product_transfers WHERE org_id = ? ORDER BY created_at DESC, id');
  const decide = db.prepare("UPDATE product_transfers SET state = ?, decided_by = ?, decided_at = ? WHERE id = ? AND state = 'pending'");
  const moveProduct = db.prepare('UPDATE products SET owner_user_id = NULL, org_id = ? WHERE id = ? AND org_id IS NULL');
  const productMembers = db.prepare<{ user_id: string; role: Role }>('SELECT user_id, role FROM product_memberships WHERE product_id = ? ORDER BY user_id');
  const orgMembers = db.prepare<{ user_id: string; role: Role }>(
    `SELECT owner_user_id AS user_id, 'owner' AS role FROM organizations WHERE id = ?
     UNION ALL SELECT user_id, role FROM org_memberships WHERE org_id = ?`,
  );
  const deleteProductMember = db.prepare('DELETE FROM product_memberships WHERE product_id = ? AND user_id = ?');
  const deleteProductBilling = db.prepare('DELETE FROM billing_accounts WHERE product_id = ?');

  const billedOfOrg = db.prepare<BilledRaw>('SELECT * FROM org_billed_users WHERE org_id = ? ORDER BY created_at, user_id');
  const billedOfUser = db.prepare<BilledRaw>('SELECT * FROM org_billed_users WHERE user_id = ?');
  const insertBilled = db.prepare('INSERT INTO org_billed_users (user_id, org_id, added_by, created_at) VALUES (?, ?, ?, ?)');
  const deleteBilled = db.prepare('DELETE FROM org_billed_users WHERE org_id = ? AND user_id = ?');
  const personalProducts = db.prepare<{ id: number }>('SELECT id FROM products WHERE owner_user_id = ? ORDER BY id');

  const handOver = db.transaction((orgId: string, userId: string): Org => {
    const o = orgById.get(orgId);
    if (!o) throw new StoreError('not_found', `no org ${orgId}`);
    if (o.owner_user_id === userId) throw new StoreError('conflict', `${userId} is already the Owner of org ${orgId}`);
    if (!orgRole.get(orgId, userId)) throw new StoreError('conflict', `${userId} is not on the team of org ${orgId}: the next Owner must be`);
    deleteOrgMember.run(orgId, userId);
    setOwner.run(userId, orgId);
    // The former Owner keeps the highest role there is to grant.
    insertOrgMember.run(orgId, o.owner_user_id, 'administrator');
    return { id: o.id, name: o.name, slug: o.slug, ownerUserId: userId, createdAt: new Date(o.created_at) };
  });

  const request = db.transaction((productId: number, orgId: string, requestedBy: string): ProductTransfer => {
    const p = productRow.get(productId);
    if (!p) throw new StoreError('not_found', `no product ${productId}`);
    if (p.org_id !== null) throw new StoreError('conflict', `product ${productId} already belongs to an organization`);
    if (pendingOfProduct.get(productId)) throw new StoreError('conflict', `product ${productId} already has a pending transfer`);
    const row: TransferRaw = { id: newId(), product_id: productId, org_id: orgId, requested_by: requestedBy, state: 'pending', decided_by: null, created_at: ctx.now(), decided_at: null };
    refusing({ foreignKey: `no org ${orgId} or no user ${requestedBy}` }, () => insertTransfer.run(row.id, productId, orgId, requestedBy, row.created_at));
    return transfer(row);
  });

  const accept = db.transaction((id: string, by: string): TransferOutcome => {
    const t = transferById.get(id);
    if (!t) throw new StoreError('not_found', `no transfer ${id}`);
    if (t.state !== 'pending') throw new StoreError('conflict', `the transfer is ${t.state}, not pending`);
    const p = productRow.get(t.product_id);
    if (!p || p.owner_user_id === null) throw new StoreError('conflict', `product ${t.product_id} is no longer a personal product`);
    const owner = orgById.get(t.org_id);
    if (owner && owner.owner_user_id !== p.owner_user_id && !orgRole.get(t.org_id, p.owner_user_id))
      throw new StoreError('conflict', `the product's Owner is no longer on the team of org ${t.org_id}`);
    const productTeam: TeamMember[] = productMembers.all(p.id).map((m) => ({ userId: m.user_id, role: m.role }));
    const orgTeam: TeamMember[] = orgMembers.all(t.org_id, t.org_id).map((m) => ({ userId: m.user_id, role: m.role }));
    const { kept, superseded } = transferCascade(productTeam, orgTeam, p.owner_user_id);
    const now = ctx.now();
    refusing({ foreignKey: `no user ${by}` }, () => decide.run('accepted', by, now, id));
    moveProduct.run(t.org_id, p.id);
    for (const m of superseded) deleteProductMember.run(p.id, m.userId);
    deleteProductBilling.run(p.id);
    return { transfer: transfer({ ...t, state: 'accepted', decided_by: by, decided_at: now }), formerOwnerUserId: p.owner_user_id, kept, superseded };
  });

  const close = db.transaction((id: string, state: 'declined' | 'cancelled', by: string): ProductTransfer => {
    const t = transferById.get(id);
    if (!t) throw new StoreError('not_found', `no transfer ${id}`);
    if (t.state !== 'pending') throw new StoreError('conflict', `the transfer is ${t.state}, not pending`);
    const now = ctx.now();
    refusing({ foreignKey: `no user ${by}` }, () => decide.run(state, by, now, id));
    return transfer({ ...t, state, decided_by: by, decided_at: now });
  });

  const addBilled = db.transaction((orgId: string, userId: string, addedBy: string): BilledUser => {
    const o = orgById.get(orgId);
    if (!o) throw new StoreError('not_found', `no org ${orgId}`);
    const other = billedOfUser.get(userId);
    if (other) throw new StoreError('conflict', `${username(userId)} is already billed to ${other.org_id === orgId ? 'this' : 'another'} org`);
    if (o.owner_user_id !== userId && !orgRole.get(orgId, userId)) throw new StoreError('conflict', `${username(userId)} is not on the team of org ${o.slug}`);
    const row: BilledRaw = { user_id: userId, org_id: orgId, added_by: addedBy, created_at: ctx.now() };
    refusing({ foreignKey: `no user ${userId} or ${addedBy}` }, () => insertBilled.run(userId, orgId, addedBy, row.created_at));
    return billed(row);
  });

  return {
    async setOrgOwner(orgId, newOwnerUserId) {
      return handOver.immediate(orgId, newOwnerUserId);
    },
    async requestTransfer(input) {
      return request.immediate(productKey(input.productId), input.orgId, input.requestedBy);
    },
    async getTransfer(id) {
      const r = typeof id === 'string' ? transferById.get(id) : undefined;
      return r ? transfer(r) : null;
    },
    async listTransfers(of) {
      return (of.orgId !== undefined ? transfersOfOrg.all(of.orgId) : transfersOfProduct.all(productKey(of.productId))).map(transfer);
    },
    async acceptTransfer(id, decidedBy) {
      return accept.immediate(id, decidedBy);
    },
    async closeTransfer(id, state, decidedBy) {
      if (state !== 'declined' && state !== 'cancelled') throw new StoreError('invalid', 'a transfer is closed as declined or cancelled');
      return close.immediate(id, state, decidedBy);
    },
    async billedUsers(orgId) {
      return billedOfOrg.all(orgId).map(billed);
    },
    async addBilledUser(orgId, userId, addedBy) {
      return addBilled.immediate(orgId, userId, addedBy);
    },
    async removeBilledUser(orgId, userId) {
      return deleteBilled.run(orgId, userId).changes > 0;
    },
    async billingOrgOf(userId) {
      return billedOfUser.get(userId)?.org_id ?? null;
    },
    async personalProductIds(userId) {
      return personalProducts.all(userId).map((r) => r.id);
    },
  };
}
