/**
 * The signed-in user and what is theirs: profile, sign-up, access tokens,
 * invitations to teams, personal OAuth clients, orgs and personal products.
 */
import { decide } from '../../policy/decide.js';
import { guard, person, visibleProducts } from '../access.js';
import { countTokenRequest, route, tooMany, type ApiContext, type Route } from '../app.js';
import { ApiError } from '../errors.js';
import { account, field, flag, numberOf } from '../body.js';
import type { Actor } from '../../policy/types.js';
import { actorOf, auditEntry, subjectOf, tokenProblem } from '../../identity/actor.js';
import { invitationStands } from '../../policy/team.js';
import { TOKEN_HANDLE_LENGTH, type Invitation, type OAuthClient, type Org, type Product, type TokenSubject } from '../../store/store.js';

/** Particle's platform id of the Photon: what every product and device of this bridge is. */
export const PHOTON = 6;

/** A product's description as sent (text, or null to clear it; undefined when absent): every product object shows it as text. */
export function description(v: unknown): string | null | undefined {
  if (v !== undefined && v !== null && typeof v !== 'string') throw ApiError.of(400, 'description must be a string');
  return v;
}

const user = (actor: Actor): string => person(actor).userId;

export function clientObject(c: OAuthClient, secret?: string) {
  return { id: c.id, name: c.name, type: c.type, redirect_uri: c.redirectUris.join(' ') || undefined, product_id: c.productId ?? undefined, ...(secret ? { secret } : {}) };
}

/** Particle's product object: `org` is the org's id whichever route lists it (a slug can change). */
export function productObject(p: Product) {
  return {
    id: p.id, name: p.name, slug: p.slug, platform_id: PHOTON, description: (p.settings.description as string | undefined) ?? '',
    user: p.ownerUserId, org: p.orgId, organization: p.orgId, settings: p.settings, created_at: p.createdAt.toISOString(),
  };
}

export function orgObject(o: Org) {
  return { id: o.id, name: o.name, slug: o.slug, owner: o.ownerUserId, created_at: o.createdAt.toISOString() };
}

/** A new product from Particle's body ({product: {name, slug, description}} or the fields flat). */
export async function newProduct(ctx: ApiContext, body: Record<string, unknown>, owner: { ownerUserId: string } | { orgId: string }) {
  const p = (typeof body.product === 'object' && body.product !== null ? body.product : body) as Record<string, unknown>;
  const name = field(p, 'name');
  const slug = typeof p.slug === 'string' && p.slug !== '' ? p.slug : name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') + '-v1';
  // Every product here is of Photon-class devices (what its objects say): another platform is refused, not ignored.
  if (p.platform_id !== undefined && numberOf(p.platform_id) !== PHOTON) throw ApiError.of(400, `platform_id: this bridge's devices are Photon-class (platform ${PHOTON})`);
  const d = description(p.description);
  const settings = d === undefined || d === null ? {} : { description: d };
  const product = await ctx.store.createProduct({ name, slug, settings, ...owner });
  return { status: 201, body: { ok: true, product: productObject(product) } };
}

async function ownClient(ctx: ApiContext, actor: Actor, id: string): Promise<OAuthClient> {
  const c = await ctx.store.getClient(id);
  if (!c || c.ownerUserId === null || c.ownerUserId !== user(actor)) throw ApiError.of(404, 'Client not found');
  return c;
}

const SELF = guard.signedIn('about the actor itself');

/** A token handle as GET /v1/access_tokens lists it. */
const HANDLE = new RegExp('^[0-9a-f]{' + TOKEN_HANDLE_LENGTH + '}$');

/** Whose tokens these routes list and revoke: a user's or a customer's own. */
function subject(actor: Actor): TokenSubject {
  const s = subjectOf(actor);
  if (!s || s.kind === 'apiUser') throw ApiError.of(403, 'Only a user or a customer has tokens of their own here; an API user\'s are managed on its team');
  return s;
}

/** Whether an invitation still stands: its sender may still invite to its team with its role (policy/team.ts). */
async function stands(ctx: ApiContext, inv: Invitation): Promise<boolean> {
  const inviter = await actorOf(ctx.store, { kind: 'user', id: inv.invitedBy });
  if (inv.orgId !== null) {
    const org = await ctx.store.getOrg(inv.orgId);
    return org !== null && invitationStands(inviter, inv.role, { kind: 'org', orgId: org.id, ownerUserId: org.ownerUserId });
  }
  const product = await ctx.store.productRef(inv.productId!);
  return product !== null && invitationStands(inviter, inv.role, { kind: 'product', product });
}

/** Where the bridge's owner makes accounts (not Particle's: its users sign themselves up). */
const BRIDGE_USERS = '/v1/bridge/users';

export const userRoutes: Route[] = [
  route('GET', '/v1/user', SELF, async (req, ctx, { actor }) => {
    const u = await ctx.store.getUser(user(actor));
    if (!u) throw ApiError.of(404, 'User not found');
    // The org that pays for this user's personal space (whitelisted), if one does.
    const billedTo = await ctx.store.billingOrgOf(u.id);
    const org = billedTo ? await ctx.store.getOrg(billedTo) : null;
    return { username: u.username, subscription_ids: [], account_info: {}, mfa: { enabled: false }, billed_to_org: org ? org.slug : null };
  }),
  // Particle's account changes (particle-api-js changeUsername, changeUserPassword): the current password
  // proves it is the user, counted by the login lock-out as any password try; invalidate_tokens ends every token.
  route('PUT', '/v1/user', SELF, async (req, ctx, { actor }) => {
    const b = await req.body();
    const id = user(actor);
    if (b.username === undefined && b.password === undefined) {
      throw ApiError.of(400, b.account_info !== undefined ? 'This bridge keeps no account_info; send username or password, with current_password' : 'Send username or password, with current_password');
    }
    const changes = account(b.username, b.password);
    if (typeof b.current_password !== 'string' || b.current_password === '') throw ApiError.of(400, 'current_password is required: your password now, to change your username or password');
    const me = await ctx.store.getUser(id);
    if (!me) throw ApiError.of(404, 'User not found');
    const login = await ctx.limiter.passwordCheck(req.address, me.username, () =>
      ctx.store.verifyPassword(me.username, b.current_password as string),
    );
    if ('wait' in login) throw tooMany(login.wait);
    if (login.found === null) throw ApiError.of(403, 'current_password is not your password');
    const updated = await ctx.store.updateUser(id, changes);
    if (flag(b.invalidate_tokens, 'invalidate_tokens')) ctx.fleet.cutTokenHashes(await ctx.store.revokeTokensOf({ kind: 'user', id }));
    const changed = [changes.username !== undefined ? 'username' : '', changes.password !== undefined ? 'password' : ''].filter(Boolean).join(' and ');
    await ctx.store.audit(auditEntry(actor, 'user.update', 'user', id, { allow: true, reason: changed + ' changed' }, new Date()));
    return { ok: true, username: updated.username };
  }),
  route('POST', '/v1/users', guard.public('self sign-up, when the bridge allows it'), async (req, ctx) => {
    if (!ctx.signup) throw ApiError.of(403, `Sign-up is turned off on this bridge: its owner makes accounts (POST ${BRIDGE_USERS})`);
    // The first account is the bridge's owner, made once every listener is bound: none signs up before it.
    if (!(await ctx.store.hasUsers())) throw ApiError.of(503, 'The bridge is starting: try again in a moment', { 'retry-after': '1' });
    // Each sign-up hashes a password (a scrypt): counted as the token endpoint's requests, as Particle counts user creation.
    countTokenRequest(ctx.limiter, req.address);
    const body = await req.body();
    const { username, password } = account(field(body, 'username'), field(body, 'password'));
    await ctx.store.createUser(username!, password!);
    return { status: 201, body: { ok: true } };
  }),
  // With sign-up off there is no other way in, and invitations to an address with no account wait for one.
  route('POST', BRIDGE_USERS, guard.signedIn("the bridge's owner (the account made at its first start); anyone else 403"), async (req, ctx, { actor }) => {
    const owner = actor.kind === 'user' && actor.userId === (await ctx.store.bridgeOwnerId());
    await ctx.store.audit(auditEntry(actor, 'user.create', 'bridge', '', owner ? { allow: true, reason: "the bridge's owner" } : { allow: false, status: 403, reason: "not the bridge's owner" }, new Date()));
    if (!owner) throw ApiError.of(403, "Only the bridge's owner (the account made at its first start) makes accounts here");
    const body = await req.body();
    const { username, password } = account(field(body, 'username'), field(body, 'password'));
    const made = await ctx.store.createUser(username!, password!);
    return { status: 201, body: { ok: true, id: made.id, username: made.username } };
  }),

  // Access tokens: your own, listed by handle (the bridge keeps only their
  // SHA-256), the current one, and revoking one or all of them. Listing and
  // revoking all take a username and password too, as Particle's
  // (curl -u name:password): the way back in for someone whose tokens leaked.
  route('GET', '/v1/access_tokens', SELF, async (req, ctx, { actor }) => {
    const list = await ctx.store.listTokens(subject(actor));
    return list.map((t) => ({ token: t.id, expires_at: t.expiresAt?.toISOString() ?? null, client: t.clientId, scopes: t.scopes, created_at: t.createdAt.toISOString() }));
  }, { password: true }),
  route('DELETE', '/v1/access_tokens', SELF, async (req, ctx, { actor }) => {
    ctx.fleet.cutTokenHashes(await ctx.store.revokeTokensOf(subject(actor)));
    return { ok: true };
  }, { password: true }),
  route('GET', '/v1/access_tokens/current', SELF, async (req, ctx, { actor }) => {
    const t = await ctx.store.findToken(req.token ?? '');
    const orgs = actor.kind === 'user' ? Object.keys(actor.memberships.orgs) : [];
    return { expires_at: t?.expiresAt?.toISOString() ?? null, client: t?.clientId ?? null, scopes: t?.scopes ?? [], orgs };
  }),
  route('DELETE', '/v1/access_tokens/current', SELF, async (req, ctx) => {
    const token = req.token ?? '';
    await ctx.store.revokeToken(token);
    ctx.fleet.cutToken(token);
    return { ok: true };
  }),
  route('DELETE', '/v1/access_tokens/:token', guard.public('the token in the path is its own credential (particle-api-js deleteAccessToken sends no other); a handle from the listing needs its owner\'s token'), async (req, ctx) => {
    const given = req.params.token;
    // A handle from the listing: only with a live token of the same user or customer; else, as for an unknown token, 404.
    if (HANDLE.test(given)) {
      const t = req.token ? await ctx.store.findToken(req.token) : null;
      if (tokenProblem(t, new Date()) || !t) throw ApiError.of(401, 'A token handle is revoked with a valid token of its owner');
      const cut = t.subject.kind === 'apiUser' ? [] : await ctx.store.revokeTokensOf(t.subject, given);
      if (cut.length === 0) throw ApiError.of(404, 'Token not found');
      ctx.fleet.cutTokenHashes(cut);
      return { ok: true };
    }
    // The token itself: whoever holds it may end it.
    const t = await ctx.store.findToken(given);
    if (!t || t.revokedAt) throw ApiError.of(404, 'Token not found');
    await ctx.store.revokeToken(given);
    ctx.fleet.cutToken(given);
    return { ok: true };
  }),
  // Particle's analytics identity (particle-api-js trackingIdentity): the user's id, and with full its e-mail too.
  route('GET', '/v1/user/identify', SELF, async (req, ctx, { actor }) => {
    const u = await ctx.store.getUser(user(actor));
    if (!u) throw ApiError.of(404, 'User not found');
    return req.url.searchParams.has('tracking') ? { id: u.id } : { id: u.id, email: u.username };
  }),

  // Invitations addressed to the signed-in user.
  route('GET', '/v1/user/invitations', SELF, async (req, ctx, { actor }) => {
    const u = await ctx.store.getUser(user(actor));
    const list = u ? await ctx.store.invitations({ email: u.username }) : [];
    return list.map((i) => ({ id: i.id, org: i.orgId, product_id: i.productId, role: i.role, invited_at: i.createdAt.toISOString() }));
  }),
  route('PUT', '/v1/user/invitations/:invitation', SELF, async (req, ctx, { actor }) => {
    const userId = user(actor);
    const u = await ctx.store.getUser(userId);
    const inv = await ctx.store.getInvitation(req.params.invitation);
    if (!u || !inv || inv.email !== u.username) throw ApiError.of(404, 'Invitation not found');
    const body = await req.body();
    if (body.accept !== true && body.accept !== 'true') throw ApiError.of(400, 'Send accept: true (DELETE declines)');
    if (!(await stands(ctx, inv))) {
      await ctx.store.deleteInvitation(inv.id);
      throw ApiError.of(409, 'This invitation lapsed: whoever sent it may no longer invite to that team with that role. Ask the team for a new one');
    }
    let removed: { productId: string }[] = [];
    if (inv.orgId !== null) removed = await ctx.store.addOrgMember(inv.orgId, userId, inv.role);
    else await ctx.store.addProductMember(inv.productId!, userId, inv.role);
    await ctx.store.acceptInvitation(inv.id);
    await ctx.fleet.refreshUser(userId);
    return { ok: true, org: inv.orgId, product_id: inv.productId, role: inv.role, removed_product_memberships: removed.map((m) => m.productId) };
  }),
  route('DELETE', '/v1/user/invitations/:invitation', SELF, async (req, ctx, { actor }) => {
    const u = await ctx.store.getUser(user(actor));
    const inv = await ctx.store.getInvitation(req.params.invitation);
    if (!u || !inv || inv.email !== u.username) throw ApiError.of(404, 'Invitation not found');
    await ctx.store.deleteInvitation(inv.id);
    return { status: 204, body: null };
  }),

  // Personal OAuth clients.
  route('GET', '/v1/clients', SELF, async (req, ctx, { actor }) => ({ ok: true, clients: (await ctx.store.listClients({ ownerUserId: user(actor) })).map((c) => clientObject(c)) })),
  route('POST', '/v1/clients', SELF, async (req, ctx, { actor }) => {
    const body = await req.body();
    const r = await ctx.store
      .createClient({ name: field(body, 'name'), type: (body.type ?? 'installed') as 'installed' | 'web', redirectUris: redirects(body.redirect_uri), ownerUserId: user(actor) })
      ;
    return { status: 201, body: { ok: true, client: clientObject(r.client, r.secret) } };
  }),
  route('PUT', '/v1/clients/:client', SELF, async (req, ctx, { actor }) => {
    const c = await ownClient(ctx, actor, req.params.client);
    const body = await req.body();
    const updated = await ctx.store.updateClient(c.id, { name: body.name as string | undefined, redirectUris: redirects(body.redirect_uri) });
    return { ok: true, client: clientObject(updated) };
  }),
  route('DELETE', '/v1/clients/:client', SELF, async (req, ctx, { actor }) => {
    ctx.fleet.cutTokenHashes((await ctx.store.deleteClient((await ownClient(ctx, actor, req.params.client)).id)) ?? []);
    return { status: 204, body: null };
  }),

  // Orgs the user is on, creating one (its creator is its Owner), and personal products.
  route('GET', '/v1/orgs', SELF, async (req, ctx, { actor }) => {
    const out = [];
    for (const id of actor.kind === 'user' ? Object.keys(actor.memberships.orgs) : []) {
      const o = await ctx.store.getOrg(id);
      if (o) out.push({ ...orgObject(o), role: actor.kind === 'user' ? actor.memberships.orgs[id] : null });
    }
    return { organizations: out };
  }),
  route('POST', '/v1/orgs', SELF, async (req, ctx, { actor }) => {
    const o = await ctx.store.createOrg(field(await req.body(), 'name'), user(actor));
    await ctx.fleet.refreshUser(o.ownerUserId);
    return { status: 201, body: { ok: true, organization: orgObject(o) } };
  }),
  route('GET', '/v1/user/products', SELF, async (req, ctx, { actor }) => {
    const ids = actor.kind === 'user' ? Object.keys(actor.memberships.products).map(Number) : [];
    const products = (await ctx.store.productsByIds(ids)).filter((p) => p.ownerUserId !== null);
    return { products: products.map((p) => productObject(p)) };
  }),
  route('POST', '/v1/user/products', SELF, async (req, ctx, { actor }) => newProduct(ctx, await req.body(), { ownerUserId: user(actor) })),
  route('GET', '/v1/products', guard.signedIn('lists only the products decide() lets the actor view'), async (req, ctx, { actor }) => {
    const refs = (await visibleProducts(actor, ctx.store)).filter((product) => decide(actor, 'settings.view', { kind: 'product', product }).allow);
    return { products: (await ctx.store.productsByIds(refs.map((r) => Number(r.productId)))).map((p) => productObject(p)) };
  }),
];

/** redirect_uri as clients send it: one URI, several separated by spaces, or a list. */
export function redirects(v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v.split(/\s+/).filter(Boolean);
  if (Array.isArray(v)) return v.map(String);
  throw ApiError.of(400, 'redirect_uri must be a URI or a list of URIs');
}
