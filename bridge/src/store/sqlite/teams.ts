/** Organizations, products, and their teams; what the policy loads per request. */
import { isRole } from '@flotilla/protocol';
import type { Role } from '@flotilla/protocol';
import { newId } from '../secrets.js';
import { StoreError } from '../store.js';
import type { Invitation, Memberships, MemberRole, Org, Product, ProductRef, ProductSettings, RemovedProductMembership, TeamMember, TeamStore } from '../store.js';
import { cleanName, parseJson, productKey, refusing, usernameOf } from './context.js';
import type { Ctx } from './context.js';

interface OrgRaw {
  id: string;
  name: string;
  slug: string;
  owner_user_id: string;
  created_at: number;
}

interface ProductRaw {
  id: number;
  name: string;
  slug: string;
  owner_user_id: string | null;
  org_id: string | null;
  settings: string;
  created_at: number;
}

interface RefRaw {
  id: number;
  owner_user_id: string | null;
  org_id: string | null;
  org_owner_user_id: string | null;
}

interface InvitationRaw {
  id: string;
  org_id: string | null;
  product_id: number | null;
  email: string;
  role: MemberRole;
  invited_by: string;
  created_at: number;
  accepted_at: number | null;
}

function invitation(r: InvitationRaw): Invitation {
  return { id: r.id, orgId: r.org_id, productId: r.product_id, email: r.email, role: r.role, invitedBy: r.invited_by, createdAt: new Date(r.created_at) };
}

interface RoleRaw {
  ref: string;
  role: Role;
}

const SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const DIGITS = /^[0-9]+$/;

function org(r: OrgRaw): Org {
  return { id: r.id, name: r.name, slug: r.slug, ownerUserId: r.owner_user_id, createdAt: new Date(r.created_at) };
}

function product(r: ProductRaw): Product {
  return {
    id: r.id,
    name: r.name,
    slug: r.slug,
    ownerUserId: r.owner_user_id,
    orgId: r.org_id,
    settings: parseJson<ProductSettings>(r.settings),
    createdAt: new Date(r.created_at),
  };
}

export function productRefOf(r: RefRaw): ProductRef {
  return { productId: String(r.id), ownerUserId: r.owner_user_id, orgId: r.org_id, orgOwnerUserId: r.org_owner_user_id };
}

/** The SELECT list and join that make a ProductRef; devices.ts reuses it. */
export const PRODUCT_REF_SQL = `SELECT p.id AS id, p.owner_user_id AS owner_user_id, p.org_id AS org_id, o.owner_user_id AS org_owner_user_id
  FROM products p LEFT JOIN organizations o ON o.id = p.org_id`;

/** "Acme Robotics, Inc." → "acme-robotics-inc". */
function slugOf(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

function memberRole(role: unknown): MemberRole {
  if (!isRole(role) || role === 'owner') throw new StoreError('invalid', `role must be administrator, developer, support or viewer`);
  return role;
}

export function teamStore(ctx: Ctx): TeamStore {
  const { db } = ctx;
  const orgProducts = db.prepare<{ id: number }>('SELECT id FROM products WHERE org_id = ? ORDER BY id');
  const insertOrg = db.prepare('INSERT INTO organizations (id, name, slug, owner_user_id, created_at) VALUES (?, ?, ?, ?, ?)');
  const orgById = db.prepare<OrgRaw>('SELECT * FROM organizations WHERE id = ?');
  const orgBySlug = db.prepare<OrgRaw>('SELECT * FROM organizations WHERE slug = ?');
  const insertOrgMember = db.prepare('INSERT INTO org_memberships (org_id, user_id, role) VALUES (?, ?, ?)');
  const deleteOrgMember = db.prepare('DELETE FROM org_memberships WHERE org_id = ? AND user_id = ?');
  const isOrgMember = db.prepare<{ one: number }>('SELECT 1 AS one FROM org_memberships WHERE org_id = ? AND user_id = ?');
  const productMembershipsInOrg = db.prepare<{ product_id: number; role: Role }>(
    `SELECT pm.product_id AS product_id, pm.role AS role FROM product_memberships pm
     JOIN products p ON p.id = pm.product_id WHERE pm.user_id = ? AND p.org_id = ? ORDER BY pm.product_id`,
  );
  const deleteProductMembershipsInOrg = db.prepare(
    'DELETE FROM product_memberships WHERE user_id = ? AND product_id IN (SELECT id FROM products WHERE org_id = ?)',
  );
  const orgTeamQ = db.prepare<{ user_id: string; role: Role }>(
    `SELECT 0 AS k, owner_user_id AS user_id, 'owner' AS role FROM organizations WHERE id = ?
     UNION ALL SELECT 1 AS k, user_id, role FROM org_memberships WHERE org_id = ?
     ORDER BY k, user_id`,
  );

  const insertProduct = db.prepare('INSERT INTO products (name, slug, owner_user_id, org_id, settings, created_at) VALUES (?, ?, ?, ?, ?, ?)');
  const productById = db.prepare<ProductRaw>('SELECT * FROM products WHERE id = ?');
  const productBySlug = db.prepare<ProductRaw>('SELECT * FROM products WHERE slug = ?');
  const refById = db.prepare<RefRaw>(`${PRODUCT_REF_SQL} WHERE p.id = ?`);
  const username = usernameOf(db);
  const refBySlug = db.prepare<RefRaw>(`${PRODUCT_REF_SQL} WHERE p.slug = ?`);
  const insertProductMember = db.prepare('INSERT INTO product_memberships (product_id, user_id, role) VALUES (?, ?, ?)');
  const deleteProductMember = db.prepare('DELETE FROM product_memberships WHERE product_id = ? AND user_id = ?');
  const productTeamQ = db.prepare<{ user_id: string; role: Role }>(
    `SELECT 0 AS k, owner_user_id AS user_id, 'owner' AS role FROM products WHERE id = ? AND owner_user_id IS NOT NULL
     UNION ALL SELECT 1 AS k, user_id, role FROM product_memberships WHERE product_id = ?
     ORDER BY k, user_id`,
  );

  const setSettings = db.prepare('UPDATE products SET settings = ? WHERE id = ?');
  const setOrgRole = db.prepare('UPDATE org_memberships SET role = ? WHERE org_id = ? AND user_id = ?');
  const setProductRole = db.prepare('UPDATE product_memberships SET role = ? WHERE product_id = ? AND user_id = ?');
  const insertInvitation = db.prepare(
    'INSERT INTO invitations (id, org_id, product_id, email, role, invited_by, created_at, accepted_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)',
  );
  const invitationById = db.prepare<InvitationRaw>('SELECT * FROM invitations WHERE id = ?');
  const pendingOfOrg = db.prepare<InvitationRaw>('SELECT * FROM invitations WHERE org_id = ? AND accepted_at IS NULL ORDER BY created_at, id');
  const pendingOfProduct = db.prepare<InvitationRaw>('SELECT * FROM invitations WHERE product_id = ? AND accepted_at IS NULL ORDER BY created_at, id');
  const pendingOfEmail = db.prepare<InvitationRaw>('SELECT * FROM invitations WHERE email = ? AND accepted_at IS NULL ORDER BY created_at, id');
  const deleteInvitation = db.prepare('DELETE FROM invitations WHERE id = ? AND accepted_at IS NULL');
  const acceptInvitation = db.prepare('UPDATE invitations SET accepted_at = ? WHERE id = ? AND accepted_at IS NULL');
  const productsIn = (n: number) => db.prepare<ProductRaw>(`SELECT * FROM products WHERE id IN (${Array(n).fill('?').join(',')}) ORDER BY id`);

  // One statement for everything the policy needs about a user: owned orgs and
  // personal products (as 'owner') and team memberships.
  const rolesOf = ctx.cached<RoleRaw & { kind: 'org' | 'product' }>(
    `SELECT 'org' AS kind, id AS ref, 'owner' AS role FROM organizations WHERE owner_user_id = ?
     UNION ALL SELECT 'org' AS kind, org_id AS ref, role FROM org_memberships WHERE user_id = ?
     UNION ALL SELECT 'product' AS kind, CAST(id AS TEXT) AS ref, 'owner' AS role FROM products WHERE owner_user_id = ?
     UNION ALL SELECT 'product' AS kind, CAST(product_id AS TEXT) AS ref, role FROM product_memberships WHERE user_id = ?`,
  );

  const addOrgMember = db.transaction((orgId: string, userId: string, role: MemberRole): RemovedProductMembership[] => {
    const o = orgById.get(orgId);
    if (!o) throw new StoreError('not_found', `no org ${orgId}`);
    if (o.owner_user_id === userId) throw new StoreError('conflict', `${userId} is the Owner of org ${orgId}`);
    const removed = productMembershipsInOrg.all(userId, orgId).map((m) => ({ productId: String(m.product_id), role: m.role }));
    refusing({ unique: `${userId} is already on the team of org ${orgId}`, foreignKey: `no user ${userId}` }, () =>
      insertOrgMember.run(orgId, userId, role),
    );
    deleteProductMembershipsInOrg.run(userId, orgId);
    return removed;
  });

  // Leaving the team also ends the org's paying for the person's personal space (whitelisted users are team members).
  const deleteBilledUser = db.prepare('DELETE FROM org_billed_users WHERE org_id = ? AND user_id = ?');
  const removeOrgMember = db.transaction((orgId: string, userId: string): boolean => {
    if (deleteOrgMember.run(orgId, userId).changes === 0) return false;
    deleteBilledUser.run(orgId, userId);
    return true;
  });

  const addProductMember = db.transaction((productId: number, userId: string, role: MemberRole): void => {
    const p = refById.get(productId);
    if (!p) throw new StoreError('not_found', `no product ${productId}`);
    if (p.owner_user_id === userId || p.org_owner_user_id === userId)
      throw new StoreError('conflict', `${username(userId)} is the Owner of product ${productId}`);
    if (p.org_id !== null && isOrgMember.get(p.org_id, userId))
      throw new StoreError('conflict', `${username(userId)} already has access to product ${productId} through org ${orgById.get(p.org_id)?.slug ?? p.org_id}`);
    refusing({ unique: `${username(userId)} is already on the team of product ${productId}`, foreignKey: `no user ${userId}` }, () =>
      insertProductMember.run(productId, userId, role),
    );
  });

  return {
    async createOrg(name, ownerUserId) {
      const n = cleanName(name, 'org name');
      const slug = slugOf(n);
      if (!slug) throw new StoreError('invalid', `org name ${JSON.stringify(n)} has no letters or digits for a slug`);
      const row: OrgRaw = { id: newId(), name: n, slug, owner_user_id: ownerUserId, created_at: ctx.now() };
      refusing({ unique: `an org named ${n} (${slug}) exists`, foreignKey: `no user ${ownerUserId}` }, () =>
        insertOrg.run(row.id, row.name, row.slug, row.owner_user_id, row.created_at),
      );
      return org(row);
    },

    async getOrg(idOrSlug) {
      const r = orgById.get(idOrSlug) ?? orgBySlug.get(idOrSlug);
      return r ? org(r) : null;
    },

    async addOrgMember(orgId, userId, role) {
      return addOrgMember.immediate(orgId, userId, memberRole(role));
    },

    async removeOrgMember(orgId, userId) {
      return removeOrgMember.immediate(orgId, userId);
    },

    async orgTeam(orgId) {
      return orgTeamQ.all(orgId, orgId).map((r): TeamMember => ({ userId: r.user_id, role: r.role }));
    },

    async createProduct(input) {
      const name = cleanName(input.name, 'product name');
      const slug = typeof input.slug === 'string' ? input.slug : '';
      if (!SLUG.test(slug) || DIGITS.test(slug) || slug.length > 100)
        throw new StoreError('invalid', 'slug must be lowercase letters, digits and dashes, not only digits, at most 100 characters');
      const ownerUserId = input.ownerUserId ?? null;
      const orgId = input.orgId ?? null;
      if ((ownerUserId === null) === (orgId === null)) throw new StoreError('invalid', 'a product belongs to exactly one of a user or an org');
      const settings = JSON.stringify(input.settings ?? {});
      const now = ctx.now();
      const info = refusing({ unique: `product slug ${slug} is taken`, foreignKey: `no ${ownerUserId !== null ? 'user ' + ownerUserId : 'org ' + orgId}` }, () =>
        insertProduct.run(name, slug, ownerUserId, orgId, settings, now),
      );
      return product({ id: Number(info.lastInsertRowid), name, slug, owner_user_id: ownerUserId, org_id: orgId, settings, created_at: now });
    },

    async getProduct(idOrSlug) {
      const r = typeof idOrSlug === 'number' || DIGITS.test(idOrSlug) ? productById.get(Number(idOrSlug)) : productBySlug.get(idOrSlug);
      return r ? product(r) : null;
    },

    async addProductMember(productId, userId, role) {
      addProductMember.immediate(productKey(productId), userId, memberRole(role));
    },

    async removeProductMember(productId, userId) {
      return deleteProductMember.run(productKey(productId), userId).changes > 0;
    },

    async productTeam(productId) {
      const id = productKey(productId);
      return productTeamQ.all(id, id).map((r): TeamMember => ({ userId: r.user_id, role: r.role }));
    },

    async updateProductSettings(productId, changes) {
      if (typeof changes !== 'object' || changes === null || Array.isArray(changes)) throw new StoreError('invalid', 'settings must be an object');
      const id = productKey(productId);
      const run = db.transaction(() => {
        const r = productById.get(id);
        if (!r) throw new StoreError('not_found', `no product ${id}`);
        const settings = parseJson<ProductSettings>(r.settings);
        for (const [k, v] of Object.entries(changes)) {
          if (k === '__proto__') continue;
          if (v === null) delete settings[k];
          else settings[k] = v;
        }
        const text = JSON.stringify(settings);
        if (text.length > 64 * 1024) throw new StoreError('invalid', 'settings are larger than 64 KB');
        setSettings.run(text, id);
      });
      run.immediate();
      return product(productById.get(id) as ProductRaw);
    },

    async productsByIds(ids) {
      const out: Product[] = [];
      // SQLite's default limit on bound parameters is 32766: ask in slices.
      for (let i = 0; i < ids.length; i += 500) {
        const slice = ids.slice(i, i + 500);
        out.push(...productsIn(slice.length).all(...slice).map(product));
      }
      return out.sort((a, b) => a.id - b.id);
    },

    async setOrgMemberRole(orgId, userId, role) {
      return setOrgRole.run(memberRole(role), orgId, userId).changes > 0;
    },

    async setProductMemberRole(productId, userId, role) {
      return setProductRole.run(memberRole(role), productKey(productId), userId).changes > 0;
    },

    async createInvitation(input) {
      // The username of an account, or the e-mail address of someone who will sign up (the route checks which).
      const email = cleanName(input.email, 'a username or e-mail address').toLowerCase();
      const role = memberRole(input.role);
      const orgId = input.team.orgId ?? null;
      const productId = input.team.productId !== undefined ? productKey(input.team.productId) : null;
      const pending = orgId !== null ? pendingOfOrg.all(orgId) : pendingOfProduct.all(productId);
      if (pending.some((i) => i.email === email)) throw new StoreError('conflict', `${email} already has a pending invitation to this team`);
      const row: InvitationRaw = { id: newId(), org_id: orgId, product_id: productId, email, role, invited_by: input.invitedBy, created_at: ctx.now(), accepted_at: null };
      refusing({ foreignKey: `no ${orgId !== null ? 'org ' + orgId : 'product ' + productId} or no user ${input.invitedBy}` }, () =>
        insertInvitation.run(row.id, row.org_id, row.product_id, row.email, row.role, row.invited_by, row.created_at),
      );
      return invitation(row);
    },

    async invitations(of) {
      const rows = 'email' in of && of.email !== undefined ? pendingOfEmail.all(String(of.email).trim().toLowerCase())
        : 'orgId' in of && of.orgId !== undefined ? pendingOfOrg.all(of.orgId)
          : pendingOfProduct.all(productKey((of as { productId: number | string }).productId));
      return rows.map(invitation);
    },

    async getInvitation(id) {
      const r = invitationById.get(id);
      return r && r.accepted_at === null ? invitation(r) : null;
    },

    async deleteInvitation(id) {
      return deleteInvitation.run(id).changes > 0;
    },

    async acceptInvitation(id) {
      return acceptInvitation.run(ctx.now(), id).changes > 0;
    },

    async orgProductIds(orgId) {
      return orgProducts.all(orgId).map((r) => r.id);
    },

    async memberships(userId) {
      const orgs: { [orgId: string]: Role } = {};
      const products: { [productId: string]: Role } = {};
      for (const r of rolesOf.all(userId, userId, userId, userId)) {
        const into = r.kind === 'org' ? orgs : products;
        // Ownership wins over a stray team row for the same id, whatever order the rows come in.
        if (r.role === 'owner' || !Object.prototype.hasOwnProperty.call(into, r.ref)) into[r.ref] = r.role;
      }
      const m: Memberships = { orgs, products };
      return m;
    },

    async productRef(productIdOrSlug) {
      const key = typeof productIdOrSlug === 'number' ? productIdOrSlug : String(productIdOrSlug);
      const r = typeof key === 'number' || DIGITS.test(key) ? refById.get(Number(key)) : refBySlug.get(key);
      return r ? productRefOf(r) : null;
    },
  };
}
