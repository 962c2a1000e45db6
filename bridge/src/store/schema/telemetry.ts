/**
 * Entities of what devices report and what the policy decided: vitals (the
 * latest report and the history), error reports, the audit log.
 *
 * The vitals column is `metric_values`, not `values`: VALUES is a keyword in
 * both SQLite and PostgreSQL, and every query would have to quote it.
 */
import { EntitySchema } from 'typeorm';
import { bool, counter, integer, json, ms, ref, serial, text, varchar } from './columns.js';

export interface VitalsLatestRow {
  deviceId: string;
  values: { [name: string]: number };
  updatedAt: number;
}

export const VitalsLatestEntity = new EntitySchema<VitalsLatestRow>({
  name: 'VitalsLatest',
  tableName: 'vitals_latest',
  columns: {
    deviceId: ref('device_id', 'Device', 'CASCADE', { primary: true }),
    values: json('metric_values'),
    updatedAt: ms('updated_at'),
  },
});

export interface VitalsHistoryRow {
  id: number;
  deviceId: string;
  values: { [name: string]: number };
  at: number;
}

export const VitalsHistoryEntity = new EntitySchema<VitalsHistoryRow>({
  name: 'VitalsHistory',
  tableName: 'vitals_history',
  columns: {
    id: serial(),
    deviceId: ref('device_id', 'Device', 'CASCADE'),
    values: json('metric_values'),
    at: ms('at'),
  },
  indices: [
    { name: 'idx_vitals_history_device_at', columns: ['deviceId', 'at'] },
    // Pruning by age (store.prune).
    { name: 'idx_vitals_history_at', columns: ['at'] },
  ],
});

export interface ErrorReportRow {
  id: number;
  deviceId: string;
  productId: number;
  firmwareVersion: number | null;
  source: string;
  name: string;
  message: string;
  stack: string;
  count: number;
  uptime: number;
  at: number;
}

export const ErrorReportEntity = new EntitySchema<ErrorReportRow>({
  name: 'ErrorReport',
  tableName: 'error_reports',
  columns: {
    id: serial(),
    deviceId: ref('device_id', 'Device', 'CASCADE'),
    // Copied from the device when reported: the product and firmware it ran then.
    productId: ref('product_id', 'Product', 'CASCADE', { type: 'integer' }),
    firmwareVersion: integer('firmware_version', true),
    source: varchar('source'),
    name: varchar('name'),
    message: text('message'),
    stack: text('stack'),
    count: integer('count'),
    uptime: integer('uptime'),
    at: ms('at'),
  },
  indices: [
    { name: 'idx_error_reports_product_firmware', columns: ['productId', 'firmwareVersion'] },
    { name: 'idx_error_reports_device_at', columns: ['deviceId', 'at'] },
    { name: 'idx_error_reports_at', columns: ['at'] },
  ],
});

export interface AuditLogRow {
  id: number;
  at: number;
  actorKind: string;
  actorId: string;
  action: string;
  resourceKind: string;
  resourceId: string;
  allowed: boolean;
  status: number;
  reason: string;
}

/** No foreign keys: the log outlives the users, devices and products it names. */
export const AuditLogEntity = new EntitySchema<AuditLogRow>({
  name: 'AuditLog',
  tableName: 'audit_log',
  columns: {
    id: serial(),
    at: ms('at'),
    actorKind: varchar('actor_kind'),
    actorId: varchar('actor_id'),
    action: varchar('action'),
    resourceKind: varchar('resource_kind'),
    resourceId: varchar('resource_id'),
    allowed: bool('allowed'),
    status: integer('status'),
    reason: text('reason'),
  },
  indices: [
    { name: 'idx_audit_log_actor', columns: ['actorKind', 'actorId'] },
    { name: 'idx_audit_log_resource', columns: ['resourceKind', 'resourceId'] },
    { name: 'idx_audit_log_at', columns: ['at'] },
  ],
});

export interface UsageDailyRow {
  productId: number;
  day: string;
  messages: number;
  bytes: number;
}

export const UsageDailyEntity = new EntitySchema<UsageDailyRow>({
  name: 'UsageDaily',
  tableName: 'usage_daily',
  columns: {
    productId: ref('product_id', 'Product', 'CASCADE', { primary: true, type: 'integer' }),
    day: { type: 'varchar', primary: true },
    messages: counter('messages'),
    bytes: counter('bytes'),
  },
});

export interface DeviceDayRow {
  productId: number;
  day: string;
  deviceId: string;
}

export const DeviceDayEntity = new EntitySchema<DeviceDayRow>({
  name: 'DeviceDay',
  tableName: 'device_days',
  columns: {
    productId: ref('product_id', 'Product', 'CASCADE', { primary: true, type: 'integer' }),
    day: { type: 'varchar', primary: true },
    deviceId: { type: 'varchar', primary: true, name: 'device_id' },
  },
  indices: [{ name: 'idx_device_days_day', columns: ['day'] }],
});

export interface DataOpsDailyRow {
  productId: number;
  day: string;
  operations: number;
}

/** Data operations (Particle's billing unit) per product per day; docs/organizations.md says what counts. */
export const DataOpsDailyEntity = new EntitySchema<DataOpsDailyRow>({
  name: 'DataOpsDaily',
  tableName: 'data_ops_daily',
  columns: {
    productId: ref('product_id', 'Product', 'CASCADE', { primary: true, type: 'integer' }),
    day: { type: 'varchar', primary: true },
    operations: counter('operations'),
  },
});

export interface SimDataDailyRow {
  productId: number;
  iccid: string;
  day: string;
  bytes: number;
}

/** Cellular data per SIM per day, as its carrier reports it, kept with the product it was billed to. */
export const SimDataDailyEntity = new EntitySchema<SimDataDailyRow>({
  name: 'SimDataDaily',
  tableName: 'sim_data_daily',
  columns: {
    productId: ref('product_id', 'Product', 'CASCADE', { primary: true, type: 'integer' }),
    iccid: { type: 'varchar', primary: true },
    day: { type: 'varchar', primary: true },
    bytes: counter('bytes'),
  },
});
