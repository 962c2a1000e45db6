/**
 * Entities of a product's fleet: devices and their credentials, groups, SIM
 * cards, firmware versions, integrations (webhooks).
 */
import { EntitySchema } from 'typeorm';
import { bool, id, integer, json, ms, ref, serial, text, varchar } from './columns.js';
export { GroupReleaseEntity, OtaJobEntity, RolloutEntity } from './ota.js';

export interface DeviceRow {
  id: string;
  name: string | null;
  notes: string | null;
  productId: number;
  ownerUserId: string | null;
  customerId: string | null;
  firmwareVersion: number | null;
  variables: { [name: string]: string };
  functions: string[];
  online: boolean;
  lastHeard: number | null;
  lastHandshakeAt: number | null;
  lastIpAddress: string | null;
  development: boolean;
  quarantined: boolean;
  lockedFirmware: number | null;
  createdAt: number;
}

export const DeviceEntity = new EntitySchema<DeviceRow>({
  name: 'Device',
  tableName: 'devices',
  columns: {
    // 24 lowercase hex characters, as Particle's device ids (checked by the store).
    id: id(),
    name: varchar('name', true),
    notes: text('notes', true),
    // RESTRICT: a product with devices is not deleted by accident.
    productId: ref('product_id', 'Product', 'RESTRICT', { type: 'integer' }),
    ownerUserId: ref('owner_user_id', 'User', 'SET NULL', { nullable: true }),
    customerId: ref('customer_id', 'Customer', 'SET NULL', { nullable: true }),
    firmwareVersion: integer('firmware_version', true),
    variables: json('variables'),
    functions: json('functions'),
    online: bool('online'),
    lastHeard: ms('last_heard', true),
    lastHandshakeAt: ms('last_handshake_at', true),
    lastIpAddress: varchar('last_ip_address', true),
    development: bool('development'),
    quarantined: bool('quarantined'),
    lockedFirmware: integer('locked_firmware', true),
    createdAt: ms('created_at'),
  },
  checks: [{ name: 'chk_devices_id_length', expression: `length("id") = 24` }],
  indices: [
    { name: 'idx_devices_product', columns: ['productId'] },
    { name: 'idx_devices_customer', columns: ['customerId'] },
    { name: 'idx_devices_owner', columns: ['ownerUserId'] },
  ],
});

export interface DeviceCredentialRow {
  deviceId: string;
  secretHash: string | null;
  certFingerprint: string | null;
  revokedAt: number | null;
}

export const DeviceCredentialEntity = new EntitySchema<DeviceCredentialRow>({
  name: 'DeviceCredential',
  tableName: 'device_credentials',
  columns: {
    deviceId: ref('device_id', 'Device', 'CASCADE', { primary: true }),
    // scrypt; null for a device that authenticates by certificate only.
    secretHash: varchar('secret_hash', true),
    // SHA-256 of the device certificate (DER), lowercase hex.
    certFingerprint: varchar('cert_fingerprint', true),
    revokedAt: ms('revoked_at', true),
  },
  uniques: [{ name: 'uq_device_credentials_fingerprint', columns: ['certFingerprint'] }],
});

export interface DeviceGroupRow {
  id: number;
  productId: number;
  name: string;
  description: string | null;
  color: string | null;
}

export const DeviceGroupEntity = new EntitySchema<DeviceGroupRow>({
  name: 'DeviceGroup',
  tableName: 'device_groups',
  columns: {
    id: serial(),
    productId: ref('product_id', 'Product', 'CASCADE', { type: 'integer' }),
    name: varchar('name'),
    description: text('description', true),
    color: varchar('color', true),
  },
  uniques: [{ name: 'uq_device_groups_product_name', columns: ['productId', 'name'] }],
});

export interface DeviceGroupMemberRow {
  groupId: number;
  deviceId: string;
}

export const DeviceGroupMemberEntity = new EntitySchema<DeviceGroupMemberRow>({
  name: 'DeviceGroupMember',
  tableName: 'device_group_members',
  columns: {
    groupId: ref('group_id', 'DeviceGroup', 'CASCADE', { primary: true, type: 'integer' }),
    deviceId: ref('device_id', 'Device', 'CASCADE', { primary: true }),
  },
  indices: [{ name: 'idx_device_group_members_device', columns: ['deviceId'] }],
});

export interface SimCardRow {
  iccid: string;
  productId: number;
  status: string;
  dataLimit: number | null;
  createdAt: number;
}

export const SimCardEntity = new EntitySchema<SimCardRow>({
  name: 'SimCard',
  tableName: 'sim_cards',
  columns: {
    iccid: { type: 'varchar', primary: true },
    productId: ref('product_id', 'Product', 'CASCADE', { type: 'integer' }),
    status: varchar('status'),
    // Megabytes per month; null for no limit.
    dataLimit: integer('data_limit', true),
    createdAt: ms('created_at'),
  },
  indices: [{ name: 'idx_sim_cards_product', columns: ['productId'] }],
});

export interface FirmwareVersionRow {
  id: number;
  productId: number;
  version: number;
  title: string;
  description: string | null;
  size: number;
  sha256: string;
  path: string;
  uploadedBy: string | null;
  uploadedAt: number;
  released: boolean;
  productDefault: boolean;
}

export const FirmwareVersionEntity = new EntitySchema<FirmwareVersionRow>({
  name: 'FirmwareVersion',
  tableName: 'firmware_versions',
  columns: {
    id: serial(),
    productId: ref('product_id', 'Product', 'CASCADE', { type: 'integer' }),
    version: integer('version'),
    title: varchar('title'),
    description: text('description', true),
    size: integer('size'),
    sha256: varchar('sha256'),
    // Where the image is, relative to the data directory: images stay out of the database.
    path: varchar('path'),
    uploadedBy: ref('uploaded_by', 'User', 'SET NULL', { nullable: true }),
    uploadedAt: ms('uploaded_at'),
    released: bool('released'),
    productDefault: bool('product_default'),
  },
  uniques: [{ name: 'uq_firmware_versions_product_version', columns: ['productId', 'version'] }],
});

/** Exactly one owner column is set (portable SQL: PostgreSQL cannot add booleans). */
export const INTEGRATION_ONE_OWNER = `("product_id" IS NOT NULL AND "user_id" IS NULL AND "org_id" IS NULL) OR ("product_id" IS NULL AND "user_id" IS NOT NULL AND "org_id" IS NULL) OR ("product_id" IS NULL AND "user_id" IS NULL AND "org_id" IS NOT NULL)`;

export interface IntegrationRow {
  id: string;
  productId: number | null;
  userId: string | null;
  orgId: string | null;
  eventPrefix: string;
  url: string;
  template: string | null;
  enabled: boolean;
  failures: number;
  createdAt: number;
}

export const IntegrationEntity = new EntitySchema<IntegrationRow>({
  name: 'Integration',
  tableName: 'integrations',
  columns: {
    id: id(),
    // Its owner, exactly one: a product (its devices), a user (the devices of their personal products) or an org (the devices of its products).
    productId: ref('product_id', 'Product', 'CASCADE', { type: 'integer', nullable: true }),
    userId: ref('user_id', 'User', 'CASCADE', { nullable: true }),
    orgId: ref('org_id', 'Organization', 'CASCADE', { nullable: true }),
    eventPrefix: varchar('event_prefix'),
    url: text('url'),
    template: text('template', true),
    enabled: bool('enabled'),
    // Consecutive failed deliveries: the webhook is disabled past a threshold.
    failures: integer('failures'),
    createdAt: ms('created_at'),
  },
  indices: [
    { name: 'idx_integrations_product', columns: ['productId'] },
    { name: 'idx_integrations_user', columns: ['userId'] },
    { name: 'idx_integrations_org', columns: ['orgId'] },
  ],
  checks: [{ name: 'chk_integrations_one_owner', expression: INTEGRATION_ONE_OWNER }],
});
