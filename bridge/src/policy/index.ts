/**
 * The bridge's authorization policy: pure decisions over loaded context.
 * Hooks and routes load Actor and Resource from the store and call decide().
 */
export { decide, userOrgRole, userProductRole } from './decide.js';
export { canChangeRole, canInvite, canRemove, inviteToOrg, invitationStands, mayGrantScope, productTeamView, scopeApplies, type TeamResource } from './team.js';
export { canConsent, canHandOver, canTakeOver, transferCascade, transferProblem } from './orgs.js';
export type { ProductMembership, TeamKind, TeamMember, TeamViewEntry } from './team.js';
export type { Actor, Decision, Memberships, ProductRef, Resource } from './types.js';
