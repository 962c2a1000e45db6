/** OAuth clients of users and products; only a hash of each secret is kept. */
import { randomBytes } from 'node:crypto';
import { hashSecret, newId, verifySecret } from '../secrets.js';
import { StoreError } from '../store.js';
import type { ClientStore, OAuthClient } from '../store.js';
import { cleanName, parseJson, productKey, refusing } from './context.js';
import type { Ctx } from './context.js';

interface ClientRaw {
  id: string;
  secret_hash: string | null;
  name: string;
  type: 'installed' | 'web';
  redirect_uris: string;
  product_id: number | null;
  owner_user_id: string | null;
  created_at: number;
}

function client(r: ClientRaw): OAuthClient {
  return {
    id: r.id, name: r.name, type: r.type, redirectUris: parseJson<string[]>(r.redirect_uris),
    productId: r.product_id, ownerUserId: r.owner_user_id, createdAt: new Date(r.created_at),
  };
}

/** Absolute http(s) URIs without a fragment (RFC 6749 §3.1.2). */
function redirectUris(v: unknown): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > 10) throw new StoreError('invalid', 'redirect_uri must be a list of at most 10 URIs');
  return v.map((u) => {
    let url: URL;
    try {
      url = new URL(String(u));
    } catch {
      throw new StoreError('invalid', `redirect URI ${JSON.stringify(u)} is not an absolute URI`);
    }
    if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.hash !== '')
      throw new StoreError('invalid', `redirect URI ${JSON.stringify(u)} must be http(s) without a fragment`);
    return url.href;
  });
}

export function clientStore(ctx: Ctx): ClientStore {
  const { db } = ctx;
  const insert = db.prepare(
    'INSERT INTO oauth_clients (id, secret_hash, name, type, redirect_uris, product_id, owner_user_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const byId = db.prepare<ClientRaw>('SELECT * FROM oauth_clients WHERE id = ?');
  const ofUser = db.prepare<ClientRaw>('SELECT * FROM oauth_clients WHERE owner_user_id = ? ORDER BY created_at, id');
  const ofProduct = db.prepare<ClientRaw>('SELECT * FROM oauth_clients WHERE product_id = ? ORDER BY created_at, id');
  const update = db.prepare('UPDATE oauth_clients SET name = ?, redirect_uris = ? WHERE id = ?');
  const remove = db.prepare('DELETE FROM oauth_clients WHERE id = ?');
  const revokeIssued = db.prepare<{ token_hash: string }>('UPDATE access_tokens SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL RETURNING token_hash');
  const removeAndRevoke = db.transaction((id: string, now: number): string[] | null =>
    remove.run(id).changes === 0 ? null : revokeIssued.all(now, id).map((r) => r.token_hash),
  );

  return {
    async createClient(input) {
      const name = cleanName(input.name, 'a client name', 100);
      if (input.type !== 'installed' && input.type !== 'web') throw new StoreError('invalid', 'type must be installed or web');
      const uris = redirectUris(input.redirectUris);
      if (input.type === 'web' && uris.length === 0) throw new StoreError('invalid', 'a web client needs at least one redirect_uri');
      const productId = input.productId !== undefined ? productKey(input.productId) : null;
      const ownerUserId = input.ownerUserId ?? null;
      // A readable id, as Particle's (<name>-<random>), and a secret shown once.
      const id = (name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'client') + '-' + newId().slice(0, 8);
      const secret = randomBytes(20).toString('hex');
      const hash = await hashSecret(secret, ctx.deviceSecretCost);
      refusing({ foreignKey: productId !== null ? `no product ${productId}` : `no user ${ownerUserId}`, unique: 'client id collision, try again' }, () =>
        insert.run(id, hash, name, input.type, JSON.stringify(uris), productId, ownerUserId, ctx.now()),
      );
      return { client: client(byId.get(id) as ClientRaw), secret };
    },

    async listClients(of) {
      return (of.ownerUserId !== undefined ? ofUser.all(of.ownerUserId) : ofProduct.all(productKey(of.productId))).map(client);
    },

    async getClient(id) {
      const r = typeof id === 'string' ? byId.get(id) : undefined;
      return r ? client(r) : null;
    },

    async updateClient(id, changes) {
      const r = byId.get(id);
      if (!r) throw new StoreError('not_found', `no client ${id}`);
      const name = changes.name !== undefined ? cleanName(changes.name, 'a client name', 100) : r.name;
      const uris = changes.redirectUris !== undefined ? JSON.stringify(redirectUris(changes.redirectUris)) : r.redirect_uris;
      update.run(name, uris, id);
      return client(byId.get(id) as ClientRaw);
    },

    async deleteClient(id) {
      return removeAndRevoke.immediate(id, ctx.now());
    },

    async verifyClient(id, secret) {
      const r = typeof id === 'string' ? byId.get(id) : undefined;
      const ok = await verifySecret(typeof secret === 'string' ? secret : '', r ? r.secret_hash : null, ctx.deviceSecretCost);
      return ok && r ? client(r) : null;
    },
  };
}
