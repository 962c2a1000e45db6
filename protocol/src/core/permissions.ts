/**
 * Roles and the role × action permission matrix, as data. The bridge's policy,
 * its tests and docs/permissions.md all read these tables; the table in
 * docs/permissions.md is compared with them cell by cell by a test.
 *
 * Every row of Particle's matrix grants an action to a role and to every role
 * above it, so a row is stored as its lowest role (`min`).
 */

/** Highest first. `owner` is Particle's "Administrator (Owner)": one per product and per org. */
export const ROLES = ['owner', 'administrator', 'developer', 'support', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/** How each role is written in Particle's Console, docs and team API (`role.name`). */
export const ROLE_TITLES: { readonly [R in Role]: string } = {
  owner: 'Administrator (Owner)',
  administrator: 'Administrator',
  developer: 'Developer',
  support: 'Support',
  viewer: 'View-only',
};

/** Higher is more. */
export function roleRank(role: Role): number {
  return ROLES.length - ROLES.indexOf(role);
}

export function roleAtLeast(role: Role, min: Role): boolean {
  return roleRank(role) >= roleRank(min);
}

export function isRole(s: unknown): s is Role {
  return typeof s === 'string' && ROLES.indexOf(s as Role) >= 0;
}

export const PRODUCT_ACTIONS = [
  { action: 'team.view', area: 'Team', title: 'View product team', min: 'viewer' },
  { action: 'team.manage', area: 'Team', title: 'Manage product team', min: 'administrator' },
  { action: 'team.apiUsers', area: 'Team', title: 'Create product API users', min: 'administrator' },
  { action: 'fleet.view', area: 'Fleet', title: 'View fleet health', min: 'viewer' },
  { action: 'device.view', area: 'Devices', title: 'View device', min: 'viewer' },
  { action: 'device.events', area: 'Devices', title: 'Subscribe to device events', min: 'viewer' },
  { action: 'device.vitals.view', area: 'Devices', title: 'View device vitals', min: 'viewer' },
  { action: 'device.vitals.refresh', area: 'Devices', title: 'Refresh device vitals', min: 'support' },
  { action: 'device.variable', area: 'Devices', title: 'Check device variables', min: 'support' },
  { action: 'device.function', area: 'Devices', title: 'Call device functions', min: 'support' },
  { action: 'device.ping', area: 'Devices', title: 'Ping device', min: 'support' },
  { action: 'device.add', area: 'Devices', title: 'Add devices to product', min: 'developer' },
  { action: 'device.edit', area: 'Devices', title: 'Edit device info', min: 'developer' },
  { action: 'device.flash', area: 'Devices', title: 'Flash firmware to devices', min: 'developer' },
  { action: 'device.remove', area: 'Devices', title: 'Remove/unclaim devices', min: 'developer' },
  { action: 'group.create', area: 'Devices', title: 'Create device group', min: 'developer' },
  { action: 'group.edit', area: 'Devices', title: 'Edit/delete device group', min: 'developer' },
  { action: 'event.publish', area: 'Devices', title: 'Publish event', min: 'developer' },
  { action: 'sim.view', area: 'SIM cards', title: 'View SIM card', min: 'viewer' },
  { action: 'sim.state', area: 'SIM cards', title: 'Update SIM lifecycle state', min: 'support' },
  { action: 'sim.limit', area: 'SIM cards', title: 'Change SIM data limit', min: 'support' },
  { action: 'sim.add', area: 'SIM cards', title: 'Add new SIMs to product', min: 'developer' },
  { action: 'sim.remove', area: 'SIM cards', title: 'Remove SIMs from product', min: 'developer' },
  { action: 'firmware.view', area: 'Firmware', title: 'View product firmware', min: 'viewer' },
  { action: 'firmware.upload', area: 'Firmware', title: 'Upload firmware version', min: 'developer' },
  { action: 'firmware.release', area: 'Firmware', title: 'Release firmware', min: 'developer' },
  { action: 'firmware.edit', area: 'Firmware', title: 'Edit firmware info', min: 'developer' },
  { action: 'integration.view', area: 'Integrations', title: 'View integrations', min: 'viewer' },
  { action: 'integration.create', area: 'Integrations', title: 'Create integration', min: 'developer' },
  { action: 'integration.edit', area: 'Integrations', title: 'Edit/delete integration', min: 'developer' },
  { action: 'client.view', area: 'OAuth clients', title: 'View OAuth clients', min: 'viewer' },
  { action: 'client.create', area: 'OAuth clients', title: 'Create OAuth client', min: 'developer' },
  { action: 'client.edit', area: 'OAuth clients', title: 'Edit/delete OAuth client', min: 'developer' },
  { action: 'customer.view', area: 'Customers', title: 'View customers', min: 'viewer' },
  { action: 'customer.create', area: 'Customers', title: 'Create customers', min: 'developer' },
  { action: 'customer.edit', area: 'Customers', title: 'Edit/delete customers', min: 'developer' },
  { action: 'settings.view', area: 'Settings', title: 'View product settings', min: 'viewer' },
  { action: 'settings.edit', area: 'Settings', title: 'Edit product settings', min: 'administrator' },
  { action: 'billing.view', area: 'Billing', title: 'View billing & usage', min: 'administrator' },
  { action: 'billing.manage', area: 'Billing', title: 'Manage billing information', min: 'owner' },
] as const;

export const ORG_ACTIONS = [
  { action: 'org.team.view', title: 'View org team', min: 'viewer' },
  { action: 'org.team.manage', title: 'Manage org team', min: 'administrator' },
  { action: 'org.apiUsers', title: 'Create org API users', min: 'administrator' },
  { action: 'org.product.create', title: 'Create new product in the org', min: 'developer' },
] as const;

export type ProductAction = (typeof PRODUCT_ACTIONS)[number]['action'];
export type OrgAction = (typeof ORG_ACTIONS)[number]['action'];
export type Action = ProductAction | OrgAction;

/**
 * The role an org member holds on every product of the org: the same role
 * (organizations.md, "Tiered Access"). The org's Owner is Owner of its products.
 */
export const ORG_ROLE_CASCADE: { readonly [R in Role]: Role } = {
  owner: 'owner',
  administrator: 'administrator',
  developer: 'developer',
  support: 'support',
  viewer: 'viewer',
};

const minByAction: { [action: string]: Role } = {};
for (let i = 0; i < PRODUCT_ACTIONS.length; i++) minByAction[PRODUCT_ACTIONS[i].action] = PRODUCT_ACTIONS[i].min;
for (let i = 0; i < ORG_ACTIONS.length; i++) minByAction[ORG_ACTIONS[i].action] = ORG_ACTIONS[i].min;

export function isAction(s: unknown): s is Action {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(minByAction, s);
}

/** The lowest role allowed to take `action`. */
export function minRoleFor(action: Action): Role {
  return minByAction[action];
}

/** One cell of the matrix: may a member with `role` take `action`? */
export function roleAllows(role: Role, action: Action): boolean {
  return isAction(action) && isRole(role) && roleAtLeast(role, minByAction[action]);
}

/**
 * Whether someone holding `granter` may give `role` to another member: nobody
 * grants above their own role, and the Owner role is never granted (one Owner,
 * set when the product or org is created, changed only by a transfer).
 */
export function canGrant(granter: Role, role: Role): boolean {
  return role !== 'owner' && roleAtLeast(granter, 'administrator') && roleAtLeast(granter, role);
}
