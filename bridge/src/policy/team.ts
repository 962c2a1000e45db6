/**
 * The team rules of organizations.md and team-access-controls.md, as pure
 * helpers for the HTTP team routes. The roles and what they may do are
 * protocol's data (canGrant, roleAllows, ORG_ROLE_CASCADE).
 *
 * `actorRole` is the acting member's effective role on the product (or org)
 * whose team is changed, as decide()/userProductRole() give it: a caller with
 * no role there gets 404 before these are asked.
 */
import { canGrant, isRole, ORG_ACTIONS, ORG_ROLE_CASCADE, roleAllows, roleAtLeast } from '@flotilla/protocol';
import type { Action, Role } from '@flotilla/protocol';
import { decide } from './decide.js';
import type { Actor, Memberships, ProductRef, Resource } from './types.js';

/** Which team is changed: a product's own team or an org's team. */
export type TeamKind = 'product' | 'org';

/** A member of a product's or an org's team, as stored. */
export interface TeamMember {
  userId: string;
  role: Role;
}

/** One line of a product's team view. */
export interface TeamViewEntry {
  userId: string;
  /** Effective role on the product. */
  role: Role;
  /** True when the access comes from the org that owns the product (org team or org Owner). */
  inherited: boolean;
}

/** A product-team membership that inviting someone to an org removes. */
export interface ProductMembership {
  productId: string;
  role: Role;
}

const MANAGE = { product: 'team.manage', org: 'org.team.manage' } as const;

function manages(actorRole: Role, team: TeamKind): boolean {
  return roleAllows(actorRole, team === 'org' ? MANAGE.org : MANAGE.product);
}

/**
 * May a member with `actorRole` invite someone to the team with `role`?
 * Needs team.manage (org.team.manage); nobody grants above their own role and
 * the Owner role is never granted.
 */
export function canInvite(actorRole: Role, role: Role, team: TeamKind = 'product'): boolean {
  return manages(actorRole, team) && canGrant(actorRole, role);
}

/**
 * May a member with `actorRole` change a member's role from `targetCurrentRole`
 * to `newRole`? The Owner's role never changes; the actor needs team.manage
 * (org.team.manage for an org team), must hold at least the target's current
 * role, and may grant `newRole` (canGrant: not above their own, never Owner).
 */
export function canChangeRole(actorRole: Role, targetCurrentRole: Role, newRole: Role, team: TeamKind = 'product'): boolean {
  return (
    isRole(targetCurrentRole) &&
    targetCurrentRole !== 'owner' &&
    manages(actorRole, team) &&
    roleAtLeast(actorRole, targetCurrentRole) &&
    canGrant(actorRole, newRole)
  );
}

/**
 * May a member with `actorRole` remove a member holding `targetRole`? The
 * Owner cannot be removed; the actor needs team.manage (org.team.manage) and at
 * least the target's role.
 */
export function canRemove(actorRole: Role, targetRole: Role, team: TeamKind = 'product'): boolean {
  return isRole(targetRole) && targetRole !== 'owner' && manages(actorRole, team) && roleAtLeast(actorRole, targetRole);
}

/**
 * The product-team memberships to remove when the person whose `memberships`
 * these are is invited to org `orgId`: every one on a product of that org
 * (`productIdsOfOrg`), since the org membership now grants access to all of
 * them. `orgId` names the org for the caller's audit; the products are
 * `productIdsOfOrg`. The inputs are not changed.
 */
export function inviteToOrg(memberships: Memberships, orgId: string, productIdsOfOrg: readonly string[]): ProductMembership[] {
  const remove: ProductMembership[] = [];
  const products = memberships.products;
  for (let i = 0; i < productIdsOfOrg.length; i++) {
    const productId = productIdsOfOrg[i];
    if (!Object.prototype.hasOwnProperty.call(products, productId)) continue;
    const role = products[productId];
    if (isRole(role) && !remove.some((m) => m.productId === productId)) remove.push({ productId, role });
  }
  return remove;
}

/**
 * The list a product's team page shows: its own members, then the members who
 * inherit access from the org that owns it (`orgTeam`; ignored for a personal
 * product), each once with the effective role decide() uses:
 *   - the product's Owner (ownerUserId) → owner, own, listed first even when
 *     `productTeam` leaves them out;
 *   - the org's Owner (orgOwnerUserId) → owner, inherited, even when `orgTeam`
 *     leaves them out;
 *   - an org member → ORG_ROLE_CASCADE[org role], inherited (this wins over a
 *     stale product membership of the same person, as in decide());
 *   - a product member → their product role, own.
 * Entries with an empty user id or an unknown role are skipped.
 */
export function productTeamView(
  productTeam: readonly TeamMember[],
  orgTeam: readonly TeamMember[],
  product: ProductRef,
): TeamViewEntry[] {
  const inOrg = typeof product.orgId === 'string' && product.orgId.length > 0;
  const orgRoles = new Map<string, Role>();
  if (inOrg) {
    for (const m of orgTeam) if (valid(m) && !orgRoles.has(m.userId)) orgRoles.set(m.userId, m.role);
  }
  const productRoles = new Map<string, Role>();
  for (const m of productTeam) if (valid(m) && !productRoles.has(m.userId)) productRoles.set(m.userId, m.role);

  const orgOwner = inOrg ? product.orgOwnerUserId : null;
  const seen = new Set<string>();
  const own: TeamViewEntry[] = [];
  if (product.ownerUserId) {
    seen.add(product.ownerUserId);
    own.push({ userId: product.ownerUserId, role: 'owner', inherited: false });
  }
  for (const [userId, role] of productRoles) {
    if (seen.has(userId) || userId === orgOwner || orgRoles.has(userId)) continue;
    seen.add(userId);
    own.push({ userId, role, inherited: false });
  }
  const inherited: TeamViewEntry[] = [];
  if (orgOwner && !seen.has(orgOwner)) {
    seen.add(orgOwner);
    inherited.push({ userId: orgOwner, role: 'owner', inherited: true });
  }
  for (const [userId, role] of orgRoles) {
    if (seen.has(userId)) continue;
    seen.add(userId);
    inherited.push({ userId, role: ORG_ROLE_CASCADE[role], inherited: true });
  }
  return own.concat(inherited);
}

function valid(m: TeamMember): boolean {
  return m != null && typeof m.userId === 'string' && m.userId.length > 0 && isRole(m.role);
}

/** A team as a resource: a product's, or an org's (an org API user's scopes then reach every org product). */
export type TeamResource = { kind: 'product'; product: ProductRef } | { kind: 'org'; orgId: string; ownerUserId: string };

const ORG_ACTION_SET: ReadonlySet<string> = new Set(ORG_ACTIONS.map((a) => a.action));

/** Whether `scope` means anything on `team`: an org action names no product. */
export function scopeApplies(scope: Action, team: TeamResource): boolean {
  return team.kind === 'org' || !ORG_ACTION_SET.has(scope);
}

/**
 * May `actor` give an API user of `team` the scope `scope`? Only a scope it
 * holds there itself: nobody grants above their own, so an API user allowed
 * to make API users cannot make one with more than it has.
 */
export function mayGrantScope(actor: Actor, scope: Action, team: TeamResource): boolean {
  return decide(actor, scope, resourceOf(team, scope)).allow;
}

/** What `action` on `team` is decided on: the product; the org; or, a product action on an org's team, every org product. */
function resourceOf(team: TeamResource, action: Action): Resource {
  if (team.kind === 'product') return { kind: 'product', product: team.product };
  return { kind: ORG_ACTION_SET.has(action) ? 'org' : 'orgProducts', orgId: team.orgId, ownerUserId: team.ownerUserId };
}

/**
 * Whether an invitation still stands when it is accepted: whoever sent it may
 * still invite to that team with its role. A member removed or demoted since
 * leaves no invitations behind that would work as back doors.
 */
export function invitationStands(inviter: Actor | null, role: Role, team: TeamResource): boolean {
  if (!inviter) return false;
  const manage = MANAGE[team.kind];
  const d = decide(inviter, manage, resourceOf(team, manage));
  return d.allow && isRole(d.role) && canInvite(d.role, role, team.kind);
}
