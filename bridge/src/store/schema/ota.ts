/**
 * OTA delivery: the version released to each group, rollouts (a release's
 * progress through a product's fleet) and jobs (one device, one image).
 * Added by migration 3.
 */
import { EntitySchema } from 'typeorm';
import { bool, integer, json, ms, ref, serial, text, varchar } from './columns.js';

export interface GroupReleaseRow {
  groupId: number;
  version: number;
}

export const GroupReleaseEntity = new EntitySchema<GroupReleaseRow>({
  name: 'GroupRelease',
  tableName: 'group_releases',
  columns: {
    groupId: ref('group_id', 'DeviceGroup', 'CASCADE', { primary: true, type: 'integer' }),
    version: integer('version'),
  },
});

export interface RolloutRow {
  id: number;
  productId: number;
  version: number;
  productDefault: boolean;
  groups: string[];
  concurrency: number;
  batchSize: number;
  failurePermille: number;
  minAttempts: number;
  state: string;
  reason: string | null;
  createdBy: string | null;
  createdAt: number;
  updatedAt: number;
  countFrom: number;
}

export const RolloutEntity = new EntitySchema<RolloutRow>({
  name: 'Rollout',
  tableName: 'rollouts',
  columns: {
    id: serial(),
    productId: ref('product_id', 'Product', 'CASCADE', { type: 'integer' }),
    version: integer('version'),
    productDefault: bool('product_default'),
    groups: json('groups'),
    concurrency: integer('concurrency'),
    batchSize: integer('batch_size'),
    // The failure threshold in thousandths: an integer column both databases compare exactly.
    failurePermille: integer('failure_permille'),
    minAttempts: integer('min_attempts'),
    // running | paused | aborted | superseded
    state: varchar('state'),
    reason: text('reason', true),
    createdBy: ref('created_by', 'User', 'SET NULL', { nullable: true }),
    createdAt: ms('created_at'),
    updatedAt: ms('updated_at'),
    countFrom: ms('count_from'),
  },
  indices: [{ name: 'idx_rollouts_product_state', columns: ['productId', 'state'] }],
});

export interface OtaJobRow {
  id: number;
  deviceId: string;
  productId: number;
  version: number;
  size: number;
  sha256: string;
  path: string;
  source: string;
  rolloutId: number | null;
  state: string;
  offset: number;
  attempts: number;
  reason: string | null;
  createdBy: string | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

export const OtaJobEntity = new EntitySchema<OtaJobRow>({
  name: 'OtaJob',
  tableName: 'ota_jobs',
  columns: {
    // The job number otaBegin carries (uint32).
    id: serial(),
    deviceId: ref('device_id', 'Device', 'CASCADE'),
    productId: ref('product_id', 'Product', 'CASCADE', { type: 'integer' }),
    version: integer('version'),
    size: integer('size'),
    sha256: varchar('sha256'),
    // Relative to the data directory: a product's firmware file, or a one-off flash image.
    path: varchar('path'),
    // release | lock | flash
    source: varchar('source'),
    rolloutId: ref('rollout_id', 'Rollout', 'SET NULL', { nullable: true, type: 'integer' }),
    // pending | sending | verified | done | failed | aborted
    state: varchar('state'),
    offset: integer('offset'),
    attempts: integer('attempts'),
    reason: varchar('reason', true),
    // A user id, or an API user's; not a foreign key: either kind may ask.
    createdBy: varchar('created_by', true),
    createdAt: ms('created_at'),
    updatedAt: ms('updated_at'),
    finishedAt: ms('finished_at', true),
  },
  indices: [
    { name: 'idx_ota_jobs_device_state', columns: ['deviceId', 'state'] },
    { name: 'idx_ota_jobs_rollout_state', columns: ['rolloutId', 'state'] },
  ],
});
