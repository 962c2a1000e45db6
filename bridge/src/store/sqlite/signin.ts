/** Authorization codes, users linked as customers, and device claim codes (SQLite). */
import { newId, sha256Hex } from '../secrets.js';
import { StoreError } from '../store.js';
import type { AuthorizationCode, ClaimCode, Customer, SigninStore } from '../store.js';
import { customer, type CustomerRaw } from './customers.js';
import { productKey, refusing, toDate } from './context.js';
import type { Ctx } from './context.js';

interface CodeRaw {
  client_id: string;
  customer_id: string;
  redirect_uri: string;
  code_challenge: string;
  expires_at: number;
  used_at: number | null;
}

interface ClaimRaw {
  product_id: number | null;
  customer_id: string | null;
  user_id: string | null;
  created_at: number;
  expires_at: number;
  device_id: string | null;
}

const authorizationCode = (r: CodeRaw): AuthorizationCode => ({
  clientId: r.client_id, customerId: r.customer_id, redirectUri: r.redirect_uri, codeChallenge: r.code_challenge, expiresAt: new Date(r.expires_at), usedAt: toDate(r.used_at),
});

const claimCode = (r: ClaimRaw): ClaimCode => ({
  productId: r.product_id,
  claimant: r.customer_id !== null ? { kind: 'customer', id: r.customer_id } : { kind: 'user', id: r.user_id as string },
  createdAt: new Date(r.created_at),
  expiresAt: new Date(r.expires_at),
  deviceId: r.device_id,
});

function positive(ttlSeconds: number): number {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) throw new StoreError('invalid', 'ttlSeconds must be a positive integer');
  return ttlSeconds * 1000;
}

function codeText(code: unknown, what: string): string {
  if (typeof code !== 'string' || code.length < 16) throw new StoreError('invalid', what + ' must be at least 16 characters');
  return code;
}

export function signinStore(ctx: Ctx): SigninStore {
  const { db } = ctx;
  const linkOf = db.prepare<CustomerRaw>('SELECT c.* FROM customer_users l JOIN customers c ON c.id = l.customer_id WHERE l.product_id = ? AND l.user_id = ?');
  const userById = db.prepare<{ username: string }>('SELECT username FROM users WHERE id = ?');
  const customerByName = db.prepare<CustomerRaw>('SELECT * FROM customers WHERE product_id = ? AND username = ?');
  const customerById = db.prepare<CustomerRaw>('SELECT * FROM customers WHERE id = ?');
  const insertCustomer = db.prepare('INSERT INTO customers (id, product_id, username, password_hash, created_at) VALUES (?, ?, ?, NULL, ?)');
  const insertLink = db.prepare('INSERT INTO customer_users (customer_id, user_id, product_id) VALUES (?, ?, ?)');
  const insertCode = db.prepare('INSERT INTO oauth_codes (code_hash, client_id, customer_id, redirect_uri, code_challenge, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?, NULL)');
  const codeByHash = db.prepare<CodeRaw>('SELECT * FROM oauth_codes WHERE code_hash = ?');
  const useCode = db.prepare('UPDATE oauth_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL');
  const revokeIssued = db.prepare<{ token_hash: string }>(
    "UPDATE access_tokens SET revoked_at = ? WHERE subject_kind = 'customer' AND subject_id = ? AND client_id = ? AND revoked_at IS NULL RETURNING token_hash",
  );
  const insertClaim = db.prepare('INSERT INTO claim_codes (code_hash, product_id, customer_id, user_id, created_at, expires_at, device_id, claimed_at) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)');
  const claimByHash = db.prepare<ClaimRaw>('SELECT * FROM claim_codes WHERE code_hash = ?');
  const spend = db.prepare('UPDATE claim_codes SET device_id = ?, claimed_at = ? WHERE code_hash = ? AND device_id IS NULL AND claimed_at IS NULL');
  // The device must be of the code's product and held by no one else (a customer or a user): checked in the statement itself.
  const claimForCustomer = db.prepare('UPDATE devices SET customer_id = ? WHERE id = ? AND product_id = ? AND owner_user_id IS NULL AND (customer_id IS NULL OR customer_id = ?)');
  const claimForUser = db.prepare('UPDATE devices SET owner_user_id = ? WHERE id = ? AND product_id = ? AND customer_id IS NULL AND (owner_user_id IS NULL OR owner_user_id = ?)');
  // A user's code without a product: the device's own product was decided on when it presented the code.
  const claimAnyForUser = db.prepare('UPDATE devices SET owner_user_id = ? WHERE id = ? AND customer_id IS NULL AND (owner_user_id IS NULL OR owner_user_id = ?)');

  const link = db.transaction((productId: number, userId: string, now: number): Customer => {
    const linked = linkOf.get(productId, userId);
    if (linked) return customer(linked);
    const user = userById.get(userId);
    if (!user) throw new StoreError('not_found', `no user ${userId}`);
    const username = user.username.toLowerCase();
    // A customer of that name made another way is someone else: never hand their devices over.
    if (customerByName.get(productId, username)) throw new StoreError('conflict', `customer ${username} exists in product ${productId} and is not linked to this account`);
    const id = newId();
    refusing({ foreignKey: `no product ${productId}` }, () => insertCustomer.run(id, productId, username, now));
    insertLink.run(id, userId, productId);
    return customer(customerById.get(id) as CustomerRaw);
  });

  const redeem = db.transaction((hash: string, clientId: string, now: number) => {
    const r = codeByHash.get(hash);
    if (!r) return null;
    // Another client's try neither spends the code nor revokes anything: whoever saw it can do neither.
    if (r.client_id !== clientId) return { outcome: 'otherClient' as const, code: authorizationCode(r) };
    if (useCode.run(now, hash).changes === 1) return { outcome: 'ok' as const, code: authorizationCode(r) };
    const revoked = revokeIssued.all(now, r.customer_id, r.client_id).map((t) => t.token_hash);
    return { outcome: 'used' as const, code: authorizationCode(r), revoked };
  });

  const spendClaim = db.transaction((hash: string, deviceId: string, now: number): boolean => {
    const r = claimByHash.get(hash);
    if (!r || r.expires_at <= now || spend.run(deviceId, now, hash).changes === 0) return false;
    const claimed = r.customer_id !== null ? claimForCustomer.run(r.customer_id, deviceId, r.product_id, r.customer_id)
      : r.product_id === null ? claimAnyForUser.run(r.user_id, deviceId, r.user_id) : claimForUser.run(r.user_id, deviceId, r.product_id, r.user_id);
    // Not claimable after all: undo the spend with the rest.
    if (claimed.changes === 0) throw new NotClaimable();
    return true;
  });

  return {
    async linkedCustomer(productId, userId) {
      return link.immediate(productKey(productId), userId, ctx.now());
    },

    async createAuthorizationCode(input) {
      const ttl = positive(input.ttlSeconds);
      const now = ctx.now();
      refusing({ foreignKey: 'no such client or customer' }, () =>
        insertCode.run(sha256Hex(codeText(input.code, 'an authorization code')), input.clientId, input.customerId, input.redirectUri, input.codeChallenge, now + ttl),
      );
    },

    async redeemAuthorizationCode(code, clientId) {
      if (typeof code !== 'string' || code.length === 0) return null;
      return redeem.immediate(sha256Hex(code), clientId, ctx.now());
    },

    async createClaimCode(input) {
      const ttl = positive(input.ttlSeconds);
      const now = ctx.now();
      const { kind, id } = input.claimant;
      if (kind === 'customer' && input.productId === null) throw new StoreError('invalid', "a customer's claim code is for the customer's product");
      const product = input.productId === null ? null : productKey(input.productId);
      refusing({ foreignKey: 'no such product, customer or user' }, () =>
        insertClaim.run(sha256Hex(codeText(input.code, 'a claim code')), product, kind === 'customer' ? id : null, kind === 'user' ? id : null, now, now + ttl),
      );
    },

    async findClaimCode(code) {
      if (typeof code !== 'string' || code.length === 0) return null;
      const r = claimByHash.get(sha256Hex(code));
      return r ? claimCode(r) : null;
    },

    async spendClaimCode(code, deviceId) {
      if (typeof code !== 'string' || code.length === 0) return false;
      try {
        return spendClaim.immediate(sha256Hex(code), deviceId, ctx.now());
      } catch (e) {
        if (e instanceof NotClaimable) return false;
        throw e;
      }
    },
  };
}

class NotClaimable extends Error {}
