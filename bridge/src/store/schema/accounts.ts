/**
 * Entities of people, teams and credentials: users, orgs, products and their
 * teams, invitations, customers, API users, OAuth clients, access tokens.
 * EntitySchema rather than decorators: tsx/esbuild emit no decorator metadata.
 */
import { EntitySchema } from 'typeorm';
import { id, json, MEMBER_ROLE_CHECK, ms, ref, serial, varchar } from './columns.js';

export interface UserRow {
  id: string;
  username: string;
  passwordHash: string;
  createdAt: number;
}

export const UserEntity = new EntitySchema<UserRow>({
  name: 'User',
  tableName: 'users',
  columns: {
    id: id(),
    username: varchar('username'),
    passwordHash: varchar('password_hash'),
    createdAt: ms('created_at'),
  },
  uniques: [{ name: 'uq_users_username', columns: ['username'] }],
});

export interface OrganizationRow {
  id: string;
  name: string;
  slug: string;
  ownerUserId: string;
  createdAt: number;
}

export const OrganizationEntity = new EntitySchema<OrganizationRow>({
  name: 'Organization',
  tableName: 'organizations',
  columns: {
    id: id(),
    name: varchar('name'),
    slug: varchar('slug'),
    // RESTRICT: an org cannot lose its Owner by accident.
    ownerUserId: ref('owner_user_id', 'User', 'RESTRICT'),
    createdAt: ms('created_at'),
  },
  uniques: [
    { name: 'uq_organizations_name', columns: ['name'] },
    { name: 'uq_organizations_slug', columns: ['slug'] },
  ],
  indices: [{ name: 'idx_organizations_owner', columns: ['ownerUserId'] }],
});

export interface OrgMembershipRow {
  orgId: string;
  userId: string;
  role: string;
}

export const OrgMembershipEntity = new EntitySchema<OrgMembershipRow>({
  name: 'OrgMembership',
  tableName: 'org_memberships',
  columns: {
    orgId: ref('org_id', 'Organization', 'CASCADE', { primary: true }),
    userId: ref('user_id', 'User', 'CASCADE', { primary: true }),
    role: varchar('role'),
  },
  checks: [{ name: 'chk_org_memberships_role', expression: MEMBER_ROLE_CHECK }],
  indices: [{ name: 'idx_org_memberships_user', columns: ['userId'] }],
});

export interface ProductRow {
  id: number;
  name: string;
  slug: string;
  ownerUserId: string | null;
  orgId: string | null;
  settings: unknown;
  createdAt: number;
}

export const ProductEntity = new EntitySchema<ProductRow>({
  name: 'Product',
  tableName: 'products',
  columns: {
    id: serial(),
    name: varchar('name'),
    slug: varchar('slug'),
    ownerUserId: ref('owner_user_id', 'User', 'RESTRICT', { nullable: true }),
    orgId: ref('org_id', 'Organization', 'RESTRICT', { nullable: true }),
    settings: json('settings'),
    createdAt: ms('created_at'),
  },
  uniques: [{ name: 'uq_products_slug', columns: ['slug'] }],
  // A product belongs to a user or to an org, never both, never neither.
  checks: [{ name: 'chk_products_one_owner', expression: `("owner_user_id" IS NULL) <> ("org_id" IS NULL)` }],
  indices: [
    { name: 'idx_products_owner', columns: ['ownerUserId'] },
    { name: 'idx_products_org', columns: ['orgId'] },
  ],
});

export interface ProductMembershipRow {
  productId: number;
  userId: string;
  role: string;
}

export const ProductMembershipEntity = new EntitySchema<ProductMembershipRow>({
  name: 'ProductMembership',
  tableName: 'product_memberships',
  columns: {
    productId: ref('product_id', 'Product', 'CASCADE', { primary: true, type: 'integer' }),
    userId: ref('user_id', 'User', 'CASCADE', { primary: true }),
    role: varchar('role'),
  },
  checks: [{ name: 'chk_product_memberships_role', expression: MEMBER_ROLE_CHECK }],
  indices: [{ name: 'idx_product_memberships_user', columns: ['userId'] }],
});

export interface InvitationRow {
  id: string;
  orgId: string | null;
  productId: number | null;
  email: string;
  role: string;
  invitedBy: string;
  createdAt: number;
  acceptedAt: number | null;
}

export const InvitationEntity = new EntitySchema<InvitationRow>({
  name: 'Invitation',
  tableName: 'invitations',
  columns: {
    id: id(),
    orgId: ref('org_id', 'Organization', 'CASCADE', { nullable: true }),
    productId: ref('product_id', 'Product', 'CASCADE', { nullable: true, type: 'integer' }),
    email: varchar('email'),
    role: varchar('role'),
    invitedBy: ref('invited_by', 'User', 'CASCADE'),
    createdAt: ms('created_at'),
    acceptedAt: ms('accepted_at', true),
  },
  checks: [
    { name: 'chk_invitations_one_team', expression: `("org_id" IS NULL) <> ("product_id" IS NULL)` },
    { name: 'chk_invitations_role', expression: MEMBER_ROLE_CHECK },
  ],
  indices: [{ name: 'idx_invitations_email', columns: ['email'] }],
});

export interface CustomerRow {
  id: string;
  productId: number;
  username: string;
  passwordHash: string | null;
  createdAt: number;
}

export const CustomerEntity = new EntitySchema<CustomerRow>({
  name: 'Customer',
  tableName: 'customers',
  columns: {
    id: id(),
    productId: ref('product_id', 'Product', 'CASCADE', { type: 'integer' }),
    username: varchar('username'),
    // Null for a customer created by the product's back end (Particle's "shadow customer").
    passwordHash: varchar('password_hash', true),
    createdAt: ms('created_at'),
  },
  uniques: [{ name: 'uq_customers_product_username', columns: ['productId', 'username'] }],
});

export interface ApiUserRow {
  id: string;
  username: string;
  orgId: string | null;
  productId: number | null;
  scopes: string[];
  createdAt: number;
}

export const ApiUserEntity = new EntitySchema<ApiUserRow>({
  name: 'ApiUser',
  tableName: 'api_users',
  columns: {
    id: id(),
    username: varchar('username'),
    orgId: ref('org_id', 'Organization', 'CASCADE', { nullable: true }),
    productId: ref('product_id', 'Product', 'CASCADE', { nullable: true, type: 'integer' }),
    scopes: json('scopes'),
    createdAt: ms('created_at'),
  },
  checks: [{ name: 'chk_api_users_one_scope', expression: `("org_id" IS NULL) <> ("product_id" IS NULL)` }],
});

export interface OAuthClientRow {
  id: string;
  secretHash: string | null;
  name: string;
  type: string;
  redirectUris: string[];
  productId: number | null;
  ownerUserId: string | null;
  createdAt: number;
}

export const OAuthClientEntity = new EntitySchema<OAuthClientRow>({
  name: 'OAuthClient',
  tableName: 'oauth_clients',
  columns: {
    id: id(),
    // Null for a public client that cannot keep a secret.
    secretHash: varchar('secret_hash', true),
    name: varchar('name'),
    type: varchar('type'),
    redirectUris: json('redirect_uris'),
    productId: ref('product_id', 'Product', 'CASCADE', { nullable: true, type: 'integer' }),
    ownerUserId: ref('owner_user_id', 'User', 'CASCADE', { nullable: true }),
    createdAt: ms('created_at'),
  },
  checks: [{ name: 'chk_oauth_clients_type', expression: `"type" IN ('installed', 'web')` }],
});

export interface AccessTokenRow {
  tokenHash: string;
  subjectKind: string;
  subjectId: string;
  clientId: string;
  scopes: string[];
  expiresAt: number | null;
  revokedAt: number | null;
  createdAt: number;
  refreshTokenHash: string | null;
}

export const AccessTokenEntity = new EntitySchema<AccessTokenRow>({
  name: 'AccessToken',
  tableName: 'access_tokens',
  columns: {
    // SHA-256 hex of the token: the token itself is never stored.
    tokenHash: { type: 'varchar', name: 'token_hash', primary: true },
    subjectKind: varchar('subject_kind'),
    // No foreign key: the subject is a user, a customer or an API user.
    subjectId: varchar('subject_id'),
    // No foreign key: Particle's public clients (particle-cli, ...) have no row.
    clientId: varchar('client_id'),
    scopes: json('scopes'),
    expiresAt: ms('expires_at', true),
    revokedAt: ms('revoked_at', true),
    createdAt: ms('created_at'),
    refreshTokenHash: varchar('refresh_token_hash', true),
  },
  uniques: [{ name: 'uq_access_tokens_refresh', columns: ['refreshTokenHash'] }],
  checks: [{ name: 'chk_access_tokens_subject', expression: `"subject_kind" IN ('user', 'customer', 'apiUser')` }],
  indices: [{ name: 'idx_access_tokens_subject', columns: ['subjectKind', 'subjectId'] }],
});

export interface ProductTransferRow {
  id: string;
  productId: number;
  orgId: string;
  requestedBy: string;
  state: string;
  decidedBy: string | null;
  createdAt: number;
  decidedAt: number | null;
}

/** A personal product's move into an org: asked by its Owner, consented to (or not) by an org Administrator. */
export const ProductTransferEntity = new EntitySchema<ProductTransferRow>({
  name: 'ProductTransfer',
  tableName: 'product_transfers',
  columns: {
    id: id(),
    productId: ref('product_id', 'Product', 'CASCADE', { type: 'integer' }),
    orgId: ref('org_id', 'Organization', 'CASCADE'),
    requestedBy: ref('requested_by', 'User', 'CASCADE'),
    state: varchar('state'),
    decidedBy: ref('decided_by', 'User', 'SET NULL', { nullable: true }),
    createdAt: ms('created_at'),
    decidedAt: ms('decided_at', true),
  },
  checks: [{ name: 'chk_product_transfers_state', expression: `"state" IN ('pending', 'accepted', 'declined', 'cancelled')` }],
  indices: [
    { name: 'idx_product_transfers_product', columns: ['productId'] },
    { name: 'idx_product_transfers_org', columns: ['orgId'] },
  ],
});

export interface OrgBilledUserRow {
  userId: string;
  orgId: string;
  addedBy: string | null;
  createdAt: number;
}

/** Whitelisted users: the org pays for their personal space. One paying org per user. */
export const OrgBilledUserEntity = new EntitySchema<OrgBilledUserRow>({
  name: 'OrgBilledUser',
  tableName: 'org_billed_users',
  columns: {
    userId: ref('user_id', 'User', 'CASCADE', { primary: true }),
    orgId: ref('org_id', 'Organization', 'CASCADE'),
    addedBy: ref('added_by', 'User', 'SET NULL', { nullable: true }),
    createdAt: ms('created_at'),
  },
  indices: [{ name: 'idx_org_billed_users_org', columns: ['orgId'] }],
});

export interface BillingAccountRow {
  id: number;
  orgId: string | null;
  productId: number | null;
  name: string | null;
  email: string | null;
  address: string | null;
  country: string | null;
  taxId: string | null;
  updatedBy: string | null;
  updatedAt: number;
}

/** Billing information of an org, or of a personal product (an org's products are billed to the org). */
export const BillingAccountEntity = new EntitySchema<BillingAccountRow>({
  name: 'BillingAccount',
  tableName: 'billing_accounts',
  columns: {
    id: serial(),
    orgId: ref('org_id', 'Organization', 'CASCADE', { nullable: true }),
    productId: ref('product_id', 'Product', 'CASCADE', { nullable: true, type: 'integer' }),
    name: varchar('name', true),
    email: varchar('email', true),
    address: { type: 'text', name: 'address', nullable: true },
    country: varchar('country', true),
    taxId: varchar('tax_id', true),
    updatedBy: ref('updated_by', 'User', 'SET NULL', { nullable: true }),
    updatedAt: ms('updated_at'),
  },
  uniques: [
    { name: 'uq_billing_accounts_org', columns: ['orgId'] },
    { name: 'uq_billing_accounts_product', columns: ['productId'] },
  ],
  checks: [{ name: 'chk_billing_accounts_one_owner', expression: `("org_id" IS NULL) <> ("product_id" IS NULL)` }],
});
