/**
 * How a product's end users sign in beyond a password: OAuth authorization
 * codes (the code flow with PKCE), the Flotilla user behind a customer made
 * by that flow, and device claim codes. Added by migration 4.
 */
import { EntitySchema } from 'typeorm';
import { ms, ref, varchar } from './columns.js';

export interface OAuthCodeRow {
  codeHash: string;
  clientId: string;
  customerId: string;
  redirectUri: string;
  /** BASE64URL(SHA-256(code_verifier)), as the client sent it (S256 only). */
  codeChallenge: string;
  expiresAt: number;
  usedAt: number | null;
}

export const OAuthCodeEntity = new EntitySchema<OAuthCodeRow>({
  name: 'OAuthCode',
  tableName: 'oauth_codes',
  columns: {
    // Only the SHA-256 of a code is kept, as for tokens.
    codeHash: { type: 'varchar', primary: true, name: 'code_hash' },
    clientId: ref('client_id', 'OAuthClient', 'CASCADE'),
    customerId: ref('customer_id', 'Customer', 'CASCADE'),
    redirectUri: varchar('redirect_uri'),
    codeChallenge: varchar('code_challenge'),
    expiresAt: ms('expires_at'),
    usedAt: ms('used_at', true),
  },
});

export interface CustomerUserRow {
  customerId: string;
  userId: string;
  productId: number;
}

/** A customer that is a Flotilla user who linked their account to the product (OAuth 2.0 mode): one per user and product. */
export const CustomerUserEntity = new EntitySchema<CustomerUserRow>({
  name: 'CustomerUser',
  tableName: 'customer_users',
  columns: {
    customerId: ref('customer_id', 'Customer', 'CASCADE', { primary: true }),
    userId: ref('user_id', 'User', 'CASCADE'),
    productId: ref('product_id', 'Product', 'CASCADE', { type: 'integer' }),
  },
  uniques: [{ name: 'uq_customer_users_product_user', columns: ['productId', 'userId'] }],
});

export interface ClaimCodeRow {
  codeHash: string;
  productId: number | null;
  /** Who claims: a customer of the product, or a user. */
  customerId: string | null;
  userId: string | null;
  createdAt: number;
  expiresAt: number;
  /** The device that presented it (then the code is spent). */
  deviceId: string | null;
  claimedAt: number | null;
}

export const ClaimCodeEntity = new EntitySchema<ClaimCodeRow>({
  name: 'ClaimCode',
  tableName: 'claim_codes',
  columns: {
    codeHash: { type: 'varchar', primary: true, name: 'code_hash' },
    productId: ref('product_id', 'Product', 'CASCADE', { type: 'integer', nullable: true }),
    customerId: ref('customer_id', 'Customer', 'CASCADE', { nullable: true }),
    userId: ref('user_id', 'User', 'CASCADE', { nullable: true }),
    createdAt: ms('created_at'),
    expiresAt: ms('expires_at'),
    deviceId: ref('device_id', 'Device', 'SET NULL', { nullable: true }),
    claimedAt: ms('claimed_at', true),
  },
  checks: [
    { name: 'chk_claim_codes_one_claimant', expression: `("customer_id" IS NULL) <> ("user_id" IS NULL)` },
    { name: 'chk_claim_codes_customer_product', expression: `"customer_id" IS NULL OR "product_id" IS NOT NULL` },
  ],
});
