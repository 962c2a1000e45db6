/**
 * Product and org teams, as Particle's `…/team` routes, with the rules of
 * organizations.md and team-access-controls.md (policy/team.ts):
 *   GET    …/team               members (a product's shows the org's members it inherits), API users, pending invitations
 *   POST   …/team {username, role}           invites (the invitee accepts: /v1/user/invitations)
 *   POST   …/team {friendly_name, scopes}    creates an API user and answers its token once
 *   PUT    …/team/:username {role}           changes a member's role
 *   PUT    …/team/:apiuser {friendly_name, scopes}  renames an API user or sets its scopes (a new token, answered once)
 *   DELETE …/team/:username                  removes a member, an API user or a pending invitation
 * Nobody grants above their own role, the Owner is never granted, changed or
 * removed; only a person invites, changes or removes people (API users "cannot
 * administer users", as Particle's); accepting an org invitation removes the person's product
 * memberships on the org's products (the store does it in one transaction).
 */
import { isAction, isRole, minRoleFor, ROLE_TITLES, roleRank, type Action, type Role } from '@flotilla/protocol';
import { canChangeRole, canInvite, canRemove, mayGrantScope, productTeamView, scopeApplies, type TeamResource, type TeamKind } from '../../policy/team.js';
import type { Decision } from '../../policy/types.js';
import { API_USER_DOMAIN, type ApiUser, type MemberRole, type TeamRef, type TeamMember } from '../../store/store.js';
import { guard, type Access } from '../access.js';
import { route, type ApiContext, type Route } from '../app.js';
import { ApiError } from '../errors.js';
import { EMAIL, type Fields } from '../body.js';

/** Particle's role ids, as its team API writes them. */
const ROLE_IDS: { [R in Role]: string } = { owner: 'owner', administrator: 'administrator', developer: 'developer', support: 'support', viewer: 'viewer' };

function roleObject(role: Role) {
  return { id: ROLE_IDS[role], name: ROLE_TITLES[role] };
}

/** The role a member's change is judged with: an API user allowed team.manage acts as an Administrator. */
function actingRole(d: Extract<Decision, { allow: true }> | null): Role {
  return d && isRole(d.role) ? d.role : 'administrator';
}

function teamOf(kind: TeamKind, a: Access): TeamRef {
  return kind === 'org' ? { orgId: a.org!.id } : { productId: a.product!.productId };
}

/** The team as the policy decides on it. */
function teamResource(kind: TeamKind, a: Access): TeamResource {
  return kind === 'org' ? { kind: 'org', orgId: a.org!.id, ownerUserId: a.org!.ownerUserId } : { kind: 'product', product: a.product! };
}

/** A PUT that renames an API user or sets its scopes, not one that changes a member's role. */
function isApiUserChange(body: Fields): boolean {
  return !('role' in body) && ('friendly_name' in body || 'scopes' in body);
}

/** Role names as Particle's clients send them: ids or titles, any case ("Administrator", "view-only"). */
function parseRole(v: unknown): MemberRole {
  const s = typeof v === 'string' ? v.trim().toLowerCase() : '';
  const role = s === 'view-only' || s === 'view only' ? 'viewer' : s;
  if (!isRole(role) || role === 'owner') throw ApiError.of(400, 'role must be Administrator, Developer, Support or View-only');
  return role;
}

/** Scopes as actions ("device.view") or Particle's names ("devices:list" is not ours: refused, naming the list). */
function parseScopes(v: unknown): Action[] {
  const list = typeof v === 'string' ? v.split(/[ ,]+/).filter(Boolean) : v;
  if (!Array.isArray(list) || list.length === 0) throw ApiError.of(400, 'scopes must be a non-empty list of actions (see docs/permissions.md)');
  for (const s of list) if (!isAction(s)) throw ApiError.of(400, 'Unknown scope ' + JSON.stringify(s) + ': scopes are the actions of docs/permissions.md');
  return list as Action[];
}

/** The team as its page shows it: own members before inherited ones, each by role (highest first), then username. */
async function members(ctx: ApiContext, kind: TeamKind, a: Access): Promise<{ userId: string; username: string; role: Role; inherited: boolean }[]> {
  let list: { userId: string; role: Role; inherited: boolean }[];
  if (kind === 'org') list = (await ctx.store.orgTeam(a.org!.id)).map((m) => ({ ...m, inherited: false }));
  else {
    const product = a.product!;
    const own: TeamMember[] = await ctx.store.productTeam(product.productId);
    const org: TeamMember[] = product.orgId ? await ctx.store.orgTeam(product.orgId) : [];
    list = productTeamView(own, org, product);
  }
  const named = [];
  for (const m of list) named.push({ ...m, username: (await ctx.store.getUser(m.userId))?.username ?? m.userId });
  return named.sort((x, y) => Number(x.inherited) - Number(y.inherited) || roleRank(y.role) - roleRank(x.role) || x.username.localeCompare(y.username));
}

/**
 * The person named in the path and their role: on this team itself, or (on an org product's team) through
 * the org, `inherited`, which is changed on the org's team and not here.
 */
async function findMember(ctx: ApiContext, kind: TeamKind, a: Access, username: string): Promise<{ userId: string; role: Role; inherited: boolean } | null> {
  const user = await ctx.store.findUser(username);
  if (!user) return null;
  const list = kind === 'org' ? await ctx.store.orgTeam(a.org!.id) : await ctx.store.productTeam(a.product!.productId);
  const own = list.find((x) => x.userId === user.id);
  if (own) return { userId: user.id, role: own.role, inherited: false };
  const orgId = kind === 'product' ? a.product!.orgId : null;
  const viaOrg = orgId ? (await ctx.store.orgTeam(orgId)).find((x) => x.userId === user.id) : undefined;
  return viaOrg ? { userId: user.id, role: viaOrg.role, inherited: true } : null;
}

/** An API user's friendly name from a body, or a 400. */
function friendlyName(body: Fields): string {
  const name = body.friendly_name;
  if (typeof name !== 'string' || name.trim() === '') throw ApiError.of(400, 'The friendly_name field is required');
  return name;
}

/** The scopes of a body that the actor may give an API user of this team, or a 400/403 naming the others. */
function grantableScopes(kind: TeamKind, a: Access, body: Fields): Action[] {
  const scopes = parseScopes(body.scopes);
  const team = teamResource(kind, a);
  const misplaced = scopes.filter((s) => !scopeApplies(s, team));
  if (misplaced.length > 0) throw ApiError.of(400, 'Organization scopes do not apply to a product\'s API user: ' + misplaced.join(', '));
  // The policy never lets a program take them (policy/decide.ts): granted, they would be a scope that opens nothing.
  const ownerOnly = scopes.filter((s) => minRoleFor(s) === 'owner');
  if (ownerOnly.length > 0) throw ApiError.of(400, 'An API user never holds Owner-only scopes: ' + ownerOnly.join(', '));
  const beyond = scopes.filter((s) => !mayGrantScope(a.actor, s, team));
  if (beyond.length > 0) throw ApiError.of(403, 'You may not grant scopes you do not hold yourself: ' + beyond.join(', '));
  return scopes;
}

/** A new token for the API user, answered once. API users' tokens do not expire: a program holds one and the team deletes the API user to end it. */
async function apiUserToken(ctx: ApiContext, u: ApiUser): Promise<string> {
  return (await ctx.store.issueToken({ subject: { kind: 'apiUser', id: u.id }, clientId: 'api-user', scopes: u.scopes, ttlSeconds: null })).token;
}

function apiUserBody(u: ApiUser, token: string | null) {
  return { username: apiUserName(u), friendly_name: u.username, id: u.id, is_programmatic: true, scopes: u.scopes, ...(token === null ? {} : { tokens: [{ token }] }) };
}

/** Why a person on a product's team through its org is not changed or removed there: the Owner never is, an org member is on the org's team. */
function inheritedRefusal(m: { role: Role }, username: string, change: string): ApiError {
  if (m.role === 'owner') return ApiError.of(403, 'The Owner cannot be ' + change);
  return ApiError.of(409, username + " is on this product's team through its org: change their role on the org's team");
}

async function createApiUser(ctx: ApiContext, kind: TeamKind, a: Access, body: Fields) {
  const name = friendlyName(body);
  const scopes = grantableScopes(kind, a, body);
  const u = await ctx.store.createApiUser({ username: name, scopes, ...(kind === 'org' ? { orgId: a.org!.id } : { productId: a.product!.productId }) });
  return { status: 201, body: { ok: true, created: apiUserBody(u, await apiUserToken(ctx, u)) } };
}

/**
 * Renames an API user or sets its scopes. New scopes rotate its token, as Particle's do: the old one and
 * every session opened with it end, and the new one is answered once (an API user holds one token).
 */
async function updateApiUser(ctx: ApiContext, kind: TeamKind, a: Access, u: ApiUser, body: Fields) {
  const name = 'friendly_name' in body ? friendlyName(body) : undefined;
  const scopes = 'scopes' in body ? grantableScopes(kind, a, body) : undefined;
  mayManage(kind, a, u, 'change');
  const updated = await ctx.store.updateApiUser(u.id, { username: name, scopes });
  const rotate = scopes !== undefined && [...scopes].sort().join(' ') !== [...u.scopes].sort().join(' ');
  let token: string | null = null;
  if (rotate) {
    ctx.fleet.cutTokenHashes(await ctx.store.revokeTokensOf({ kind: 'apiUser', id: u.id }));
    ctx.fleet.cutSubject('apiUser', u.id);
    token = await apiUserToken(ctx, updated);
  }
  return { ok: true, updated: apiUserBody(updated, token) };
}

/**
 * Whoever changes or deletes an API user holds every scope it holds: a program allowed to manage API users
 * does not rename or remove a more powerful one.
 */
function mayManage(kind: TeamKind, a: Access, u: ApiUser, what: 'change' | 'delete'): void {
  const team = teamResource(kind, a);
  const held = u.scopes.filter((s) => isAction(s) && !mayGrantScope(a.actor, s, team));
  if (held.length > 0) throw ApiError.of(403, `You may not ${what} an API user that holds scopes you do not hold yourself: ` + held.join(', '));
}

/**
 * The API user of this team named in the path, if it is one: by its id, or by a username whose id part
 * is its id (the name part follows the friendly name, so a username from before a rename still names it).
 */
async function findApiUser(ctx: ApiContext, kind: TeamKind, a: Access, name: string): Promise<ApiUser | null> {
  const id = API_USER_ID.exec(name)?.[1] ?? name;
  return (await ctx.store.listApiUsers(teamOf(kind, a))).find((u) => u.id === id) ?? null;
}

const API_USER_ID = new RegExp('^[a-z0-9-]+\\+([0-9a-f]{24})@' + API_USER_DOMAIN.replace(/\./g, '\\.') + '$');

/** Only people change people: an API user's team.manage covers invitations it may cancel and API users, not members. */
function personOnly(a: Access, what: string): Extract<Access['actor'], { kind: 'user' }> {
  if (a.actor.kind !== 'user') throw ApiError.of(403, 'Only a person ' + what);
  return a.actor;
}

/**
 * An API user's username, as Particle's `name+rnd@api.particle.io`: made of its friendly name and its
 * id, so it is unique, and in a domain no person's username may end in (API_USER_DOMAIN; `.invalid`
 * is reserved, RFC 2606), so `DELETE …/team/:username` names one member only. The friendly name is
 * stored; this is derived.
 */
export function apiUserName(u: Pick<ApiUser, 'id' | 'username'>): string {
  const slug = u.username.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 32) || 'api-user';
  return slug + '+' + u.id + '@' + API_USER_DOMAIN;
}

function teamRoutes(kind: TeamKind, base: string): Route[] {
  const g = kind === 'org' ? guard.org : guard.product;
  const VIEW: Action = kind === 'org' ? 'org.team.view' : 'team.view';
  const MANAGE: Action = kind === 'org' ? 'org.team.manage' : 'team.manage';
  const API_USERS: Action = kind === 'org' ? 'org.apiUsers' : 'team.apiUsers';
  const createAction = async (body: () => Promise<Fields>): Promise<Action> => ('friendly_name' in (await body()) ? API_USERS : MANAGE);
  // A change of an API user's name or scopes is API users' business; a role is a member's.
  const changeAction = async (body: () => Promise<Fields>): Promise<Action> => (isApiUserChange(await body()) ? API_USERS : MANAGE);

  return [
    route('GET', base + '/team', g(VIEW), async (req, ctx, a) => {
      const team = [];
      for (const m of await members(ctx, kind, a)) {
        team.push({ username: m.username, role: roleObject(m.role), inherited: m.inherited, is_programmatic: false });
      }
      for (const u of await ctx.store.listApiUsers(teamOf(kind, a))) {
        team.push({ username: apiUserName(u), friendly_name: u.username, id: u.id, role: null, scopes: u.scopes, inherited: false, is_programmatic: true });
      }
      const invitations = (await ctx.store.invitations(teamOf(kind, a))).map((i) => ({ id: i.id, username: i.email, role: roleObject(i.role), invited_at: i.createdAt.toISOString() }));
      return { ok: true, team, invitations };
    }),
    route('POST', base + '/team', g(createAction), async (req, ctx, a) => {
      const body = await req.body();
      if ('friendly_name' in body) return createApiUser(ctx, kind, a, body);
      // First: an API user learns nothing of who has an account or is on the team.
      const inviter = personOnly(a, 'invites team members').userId;
      const username = body.username;
      if (typeof username !== 'string' || username.trim() === '') throw ApiError.of(400, 'The username field is required');
      const role = body.role === undefined ? 'viewer' : parseRole(body.role);
      if (!canInvite(actingRole(a.decision), role, kind)) throw ApiError.of(403, 'You may not grant the role ' + ROLE_TITLES[role]);
      const existing = await ctx.store.findUser(username);
      // Someone without an account yet is invited by e-mail address (loose on purpose: it names a mailbox, it does not validate one).
      if (!existing && !EMAIL.test(username.trim())) throw ApiError.of(400, 'No user ' + JSON.stringify(username) + ', and it is not an e-mail address to invite');
      if (existing && (await members(ctx, kind, a)).some((m) => m.userId === existing.id)) throw ApiError.of(409, username + ' is already on the team');
      const inv = await ctx.store.createInvitation({ team: teamOf(kind, a), email: username, role, invitedBy: inviter });
      return { status: 201, body: { ok: true, invited: { id: inv.id, username: inv.email, role: roleObject(inv.role) } } };
    }),
    route('PUT', base + '/team/:username', g(changeAction), async (req, ctx, a) => {
      const body = await req.body();
      if (isApiUserChange(body)) {
        const u = await findApiUser(ctx, kind, a, req.params.username);
        if (!u) throw ApiError.of(404, 'No API user ' + req.params.username + ' on this team');
        return updateApiUser(ctx, kind, a, u, body);
      }
      // First: an API user learns nothing of who is on the team (it may hold team.manage without team.view).
      personOnly(a, "changes a team member's role");
      const role = parseRole(body.role);
      const m = await findMember(ctx, kind, a, req.params.username);
      if (!m) throw ApiError.of(404, 'No team member ' + req.params.username);
      if (m.inherited) throw inheritedRefusal(m, req.params.username, 'changed');
      if (!canChangeRole(actingRole(a.decision), m.role, role, kind)) throw ApiError.of(403, 'You may not change ' + req.params.username + ' to ' + ROLE_TITLES[role]);
      if (kind === 'org') await ctx.store.setOrgMemberRole(a.org!.id, m.userId, role);
      else await ctx.store.setProductMemberRole(a.product!.productId, m.userId, role);
      await ctx.fleet.refreshUser(m.userId);
      return { ok: true, username: req.params.username, role: roleObject(role) };
    }),
    route('DELETE', base + '/team/:username', g(MANAGE), async (req, ctx, a) => {
      const name = req.params.username;
      const team = teamOf(kind, a);
      // An API user removes API users and cancels invitations; people are not looked up for it (it learns nothing of them).
      const person = a.actor.kind === 'user';
      const m = person ? await findMember(ctx, kind, a, name) : null;
      if (m && !m.inherited) {
        if (!canRemove(actingRole(a.decision), m.role, kind)) throw ApiError.of(403, m.role === 'owner' ? 'The Owner cannot be removed' : 'You may not remove ' + name);
        if (kind === 'org') await ctx.store.removeOrgMember(a.org!.id, m.userId);
        else await ctx.store.removeProductMember(a.product!.productId, m.userId);
        await ctx.fleet.refreshUser(m.userId);
        return { status: 204, body: null };
      }
      const apiUser = await findApiUser(ctx, kind, a, name);
      if (apiUser) {
        mayManage(kind, a, apiUser, 'delete');
        await ctx.store.deleteApiUser(apiUser.id);
        ctx.fleet.cutSubject('apiUser', apiUser.id);
        return { status: 204, body: null };
      }
      const invitation = (await ctx.store.invitations(team)).find((i) => i.email === name.trim().toLowerCase() || i.id === name);
      if (invitation) {
        await ctx.store.deleteInvitation(invitation.id);
        return { status: 204, body: null };
      }
      throw m ? inheritedRefusal(m, name, 'removed') : ApiError.of(404, 'No team member ' + name);
    }),
  ];
}

export const teamRouteTable: Route[] = [...teamRoutes('product', '/v1/products/:product'), ...teamRoutes('org', '/v1/orgs/:org')];
