/**
 * The organization rules of organizations.md that are not cells of the
 * matrix, as pure helpers: handing an org over, moving a personal product
 * into an org, and what the move does to the product's team. Who may ask at
 * all is decide()'s (the routes' guards); these say what follows.
 */
import { isRole, roleAllows } from '@flotilla/protocol';
import type { Role } from '@flotilla/protocol';
import type { ProductRef } from './types.js';
import type { TeamMember } from './team.js';

/** Only the org's Owner hands it over: there is one Owner, and the role is never granted (canGrant). */
export function canHandOver(actorOrgRole: Role | null): boolean {
  return actorOrgRole === 'owner';
}

/** The next Owner is someone already on the org's team, not the Owner themselves. */
export function canTakeOver(targetOrgRole: Role | null): boolean {
  return isRole(targetOrgRole) && targetOrgRole !== 'owner';
}

/**
 * Whether consent to move a product into an org can come from a member with
 * `orgRole`: an Administrator or the Owner, the ones who manage the org's team
 * (every member of that team gains a role on the product it takes in).
 */
export function canConsent(orgRole: Role | null): boolean {
  return isRole(orgRole) && roleAllows(orgRole, 'org.team.manage');
}

/**
 * Why the product's Owner may not ask to move `product` into an org where they
 * hold `requesterOrgRole` (null: not on its team), or null when they may:
 * 404 for an org they are not on (its existence does not leak), 409 for a
 * product that already belongs to an org.
 */
export function transferProblem(product: ProductRef, requesterOrgRole: Role | null): { status: 404 | 409; reason: string } | null {
  if (!isRole(requesterOrgRole)) return { status: 404, reason: 'Organization not found' };
  if (product.orgId !== null || product.ownerUserId === null) return { status: 409, reason: 'The product already belongs to an organization' };
  return null;
}

/**
 * The product's own team once it belongs to the org: the former Owner leaves
 * it (the org's team now gives them their role); members who are on the org's
 * team, or are its Owner, lose their product membership (the org role governs,
 * as when someone joins the org); everyone else, a personal collaborator,
 * keeps their product role. Entries with an empty id or a bad role are skipped.
 */
export function transferCascade(
  productTeam: readonly TeamMember[],
  orgTeam: readonly TeamMember[],
  formerOwnerUserId: string,
): { kept: TeamMember[]; superseded: TeamMember[] } {
  const onOrg = new Set(orgTeam.filter(valid).map((m) => m.userId));
  const kept: TeamMember[] = [];
  const superseded: TeamMember[] = [];
  const seen = new Set<string>();
  for (const m of productTeam) {
    if (!valid(m) || m.userId === formerOwnerUserId || m.role === 'owner' || seen.has(m.userId)) continue;
    seen.add(m.userId);
    (onOrg.has(m.userId) ? superseded : kept).push({ userId: m.userId, role: m.role });
  }
  return { kept, superseded };
}

function valid(m: TeamMember): boolean {
  return m != null && typeof m.userId === 'string' && m.userId.length > 0 && isRole(m.role);
}
