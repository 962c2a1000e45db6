/** Users and access tokens. */
import { newId, newToken, sha256Hex, verifySecret } from '../secrets.js';
import { API_USER_DOMAIN, MAX_TOKEN_TTL_SECONDS, REFRESH_GRACE_MS, StoreError, TOKEN_HANDLE_LENGTH } from '../store.js';
import type { IssuedToken, IssueTokenInput, SubjectKind, TokenRecord, TokenStore, User, UserStore } from '../store.js';
import { cleanName, parseJson, passwordHash, refusing, toDate } from './context.js';
import type { Ctx } from './context.js';

interface UserRaw {
  id: string;
  username: string;
  password_hash: string;
  created_at: number;
}

interface TokenRaw {
  token_hash: string;
  subject_kind: SubjectKind;
  subject_id: string;
  client_id: string;
  scopes: string;
  expires_at: number | null;
  revoked_at: number | null;
  created_at: number;
}

const SUBJECT_KINDS: readonly string[] = ['user', 'customer', 'apiUser'];

function user(r: UserRaw): User {
  return { id: r.id, username: r.username, createdAt: new Date(r.created_at) };
}

/** A token's handle: the start of its SHA-256 (hex). */
const handleOf = (tokenHash: string): string => tokenHash.slice(0, TOKEN_HANDLE_LENGTH);

function tokenRecord(r: TokenRaw): TokenRecord {
  return {
    id: handleOf(r.token_hash),
    subject: { kind: r.subject_kind, id: r.subject_id },
    clientId: r.client_id,
    scopes: parseJson<string[]>(r.scopes),
    expiresAt: toDate(r.expires_at),
    revokedAt: toDate(r.revoked_at),
    createdAt: new Date(r.created_at),
  };
}

/** Particle's usernames are e-mail addresses: compared case-insensitively, stored lowercased. */
function normalizeUsername(username: unknown): string {
  const name = cleanName(username, 'username').toLowerCase();
  // An API user's username, taken by a person, would make DELETE …/team/:username remove the person instead.
  if (name.endsWith('@' + API_USER_DOMAIN)) throw new StoreError('invalid', 'usernames ending @' + API_USER_DOMAIN + ' are API users\' own');
  return name;
}

export function userStore(ctx: Ctx): UserStore {
  const { db } = ctx;
  const insert = db.prepare('INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)');
  const byId = db.prepare<UserRaw>('SELECT * FROM users WHERE id = ?');
  const byName = db.prepare<UserRaw>('SELECT * FROM users WHERE username = ?');
  const anyUser = db.prepare<{ one: number }>('SELECT 1 AS one FROM users LIMIT 1');
  const firstUser = db.prepare<{ id: string }>('SELECT id FROM users ORDER BY created_at, id LIMIT 1');
  const rename = db.prepare('UPDATE users SET username = ? WHERE id = ?');
  const setHash = db.prepare('UPDATE users SET password_hash = ? WHERE id = ?');
  const withdrawInvitations = db.prepare('DELETE FROM invitations WHERE email = ? AND accepted_at IS NULL');
  const readdressInvitations = db.prepare('UPDATE invitations SET email = ? WHERE email = ? AND accepted_at IS NULL');
  const update = db.transaction((id: string, name: string | undefined, hash: string | undefined) => {
    const before = byId.get(id);
    if (!before) throw new StoreError('not_found', `no user ${id}`);
    if (name !== undefined && name !== before.username) {
      refusing({ unique: `username ${name} is taken` }, () => rename.run(name, id));
      // Pending invitations follow the account they were made for. Those to the new name were made while no
      // account had it, for whoever would sign up under it: an existing account renamed to it does not get
      // them (nothing proves the address is its), so they are withdrawn.
      withdrawInvitations.run(name);
      readdressInvitations.run(name, before.username);
    }
    if (hash !== undefined) setHash.run(hash, id);
    return user(byId.get(id) as UserRaw);
  });

  return {
    async createUser(username, password) {
      const name = normalizeUsername(username);
      const hash = await passwordHash(ctx, password);
      const row: UserRaw = { id: newId(), username: name, password_hash: hash, created_at: ctx.now() };
      refusing({ unique: `username ${name} is taken` }, () => insert.run(row.id, row.username, row.password_hash, row.created_at));
      return user(row);
    },

    async getUser(id) {
      const r = byId.get(id);
      return r ? user(r) : null;
    },

    async hasUsers() {
      return anyUser.get() !== undefined;
    },

    async bridgeOwnerId() {
      return firstUser.get()?.id ?? null;
    },

    async verifyPassword(username, password) {
      const r = typeof username === 'string' ? byName.get(username.trim().toLowerCase()) : undefined;
      const ok = await verifySecret(typeof password === 'string' ? password : '', r ? r.password_hash : null, ctx.passwordCost);
      return ok && r ? user(r) : null;
    },

    async updateUser(id, changes) {
      const name = changes.username === undefined ? undefined : normalizeUsername(changes.username);
      const hash = changes.password === undefined ? undefined : await passwordHash(ctx, changes.password);
      return update.immediate(id, name, hash);
    },

    async findUser(username) {
      const r = typeof username === 'string' ? byName.get(username.trim().toLowerCase()) : undefined;
      return r ? user(r) : null;
    },
  };
}

export function tokenStore(ctx: Ctx): TokenStore {
  const { db } = ctx;
  const insert = db.prepare(
    `INSERT INTO access_tokens (token_hash, subject_kind, subject_id, client_id, scopes, expires_at, revoked_at, created_at, refresh_token_hash)
     VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)`,
  );
  const byHash = ctx.cached<TokenRaw>('SELECT * FROM access_tokens WHERE token_hash = ?');
  const byRefresh = db.prepare<TokenRaw>('SELECT * FROM access_tokens WHERE refresh_token_hash = ? AND revoked_at IS NULL');
  const revoke = db.prepare(
    'UPDATE access_tokens SET revoked_at = ? WHERE (token_hash = ? OR refresh_token_hash = ?) AND revoked_at IS NULL',
  );
  // Uses idx_access_tokens_subject.
  // Live: the access token works, or its refresh token still gets a new one (REFRESH_GRACE_MS).
  const live = db.prepare<TokenRaw>(
    `SELECT * FROM access_tokens WHERE subject_kind = @kind AND subject_id = @id AND revoked_at IS NULL
       AND (expires_at IS NULL OR expires_at > @now OR (refresh_token_hash IS NOT NULL AND expires_at > @now - @grace))
     ORDER BY created_at DESC, token_hash`,
  );
  // Every one not revoked yet, expired ones too (an expired access token's refresh token still gets a new
  // one), or only the one with a handle: what was revoked comes back, so live sessions can be cut.
  const revokeOf = db.prepare<{ token_hash: string }>(
    `UPDATE access_tokens SET revoked_at = @now WHERE subject_kind = @kind AND subject_id = @id AND revoked_at IS NULL
     AND (@handle IS NULL OR substr(token_hash, 1, ${TOKEN_HANDLE_LENGTH}) = @handle) RETURNING token_hash`,
  );

  function checkTtl(ttlSeconds: number | null): void {
    if (ttlSeconds !== null && !(Number.isInteger(ttlSeconds) && ttlSeconds > 0 && ttlSeconds <= MAX_TOKEN_TTL_SECONDS))
      throw new StoreError('invalid', `ttlSeconds must be an integer from 1 to ${MAX_TOKEN_TTL_SECONDS}, or null`);
  }

  /** Inserts a new token row; the caller is inside a transaction when it must be atomic with something else. */
  function issue(input: IssueTokenInput, now: number): IssuedToken {
    const token = newToken();
    const refreshToken = input.refresh ? newToken() : null;
    const expiresAt = input.ttlSeconds === null ? null : now + input.ttlSeconds * 1000;
    insert.run(
      sha256Hex(token),
      input.subject.kind,
      input.subject.id,
      input.clientId,
      JSON.stringify(input.scopes),
      expiresAt,
      now,
      refreshToken === null ? null : sha256Hex(refreshToken),
    );
    return { token, expiresAt: toDate(expiresAt), refreshToken };
  }

  const rotate = db.transaction((refreshHash: string, ttlSeconds: number | null, clients: readonly string[], now: number): IssuedToken | null => {
    const old = byRefresh.get(refreshHash);
    if (!old || !clients.includes(old.client_id)) return null;
    if (old.expires_at !== null && old.expires_at + REFRESH_GRACE_MS <= now) return null;
    revoke.run(now, old.token_hash, old.token_hash);
    const r = tokenRecord(old);
    return issue({ subject: r.subject, clientId: r.clientId, scopes: r.scopes, ttlSeconds, refresh: true }, now);
  });

  return {
    async issueToken(input) {
      if (!input || !input.subject || !SUBJECT_KINDS.includes(input.subject.kind) || typeof input.subject.id !== 'string' || !input.subject.id)
        throw new StoreError('invalid', 'subject must be a user, customer or apiUser with an id');
      if (typeof input.clientId !== 'string' || !input.clientId) throw new StoreError('invalid', 'clientId must not be empty');
      if (!Array.isArray(input.scopes) || !input.scopes.every((s) => typeof s === 'string'))
        throw new StoreError('invalid', 'scopes must be an array of strings');
      checkTtl(input.ttlSeconds);
      return issue(input, ctx.now());
    },

    async findToken(token) {
      if (typeof token !== 'string' || token.length === 0) return null;
      const r = byHash.get(sha256Hex(token));
      return r ? tokenRecord(r) : null;
    },

    async revokeToken(token) {
      if (typeof token !== 'string' || token.length === 0) return false;
      const h = sha256Hex(token);
      return revoke.run(ctx.now(), h, h).changes > 0;
    },

    async listTokens(subject) {
      return live.all({ kind: subject.kind, id: subject.id, now: ctx.now(), grace: REFRESH_GRACE_MS }).map(tokenRecord);
    },

    async revokeTokensOf(subject, id) {
      return revokeOf.all({ now: ctx.now(), kind: subject.kind, id: subject.id, handle: id ?? null }).map((r) => r.token_hash);
    },

    async refreshToken(refreshToken, ttlSeconds, clients) {
      if (typeof refreshToken !== 'string' || refreshToken.length === 0) return null;
      checkTtl(ttlSeconds);
      return rotate.immediate(sha256Hex(refreshToken), ttlSeconds, clients, ctx.now());
    },
  };
}
