/**
 * The first schema: every table of the bridge.
 *
 * Written with typeorm's Table API rather than SQL text, so typeorm renders it
 * for the database it runs on (SQLite today, PostgreSQL later): AUTOINCREMENT
 * becomes serial, foreign keys go inline on SQLite and ALTER TABLE on
 * PostgreSQL. The types used (varchar, text, integer, bigint, boolean) and the
 * CHECK expressions are valid in both. Tables are created in dependency order,
 * which PostgreSQL needs for its foreign keys.
 *
 * A shipped migration never changes: the helpers below are this file's own,
 * not the entities', so editing an entity cannot rewrite history. The next
 * change is a new migration; the test "entities match the migrations" fails
 * until there is one.
 */
import { Table, TableForeignKey, TableIndex } from 'typeorm';
import type { MigrationInterface, QueryRunner, TableCheckOptions, TableColumnOptions, TableUniqueOptions } from 'typeorm';

type OnDelete = 'CASCADE' | 'RESTRICT' | 'SET NULL';

const pk = (name = 'id'): TableColumnOptions => ({ name, type: 'varchar', isPrimary: true });
const serial = (): TableColumnOptions => ({
  name: 'id',
  type: 'integer',
  isPrimary: true,
  isGenerated: true,
  generationStrategy: 'increment',
});
const col = (name: string, type: 'varchar' | 'text' | 'integer' | 'bigint' | 'boolean', nullable = false): TableColumnOptions => ({
  name,
  type,
  isNullable: nullable,
});
const fk = (column: string, table: string, onDelete: OnDelete, referenced = 'id'): TableForeignKey =>
  new TableForeignKey({ columnNames: [column], referencedTableName: table, referencedColumnNames: [referenced], onDelete });
const index = (name: string, ...columnNames: string[]): TableIndex => new TableIndex({ name, columnNames });
const unique = (name: string, ...columnNames: string[]): TableUniqueOptions => ({ name, columnNames });
const check = (name: string, expression: string): TableCheckOptions => ({ name, expression });

const MEMBER_ROLE = `"role" IN ('administrator', 'developer', 'support', 'viewer')`;
const oneOf = (a: string, b: string) => `("${a}" IS NULL) <> ("${b}" IS NULL)`;

const TABLES: Table[] = [
  new Table({
    name: 'users',
    columns: [pk(), col('username', 'varchar'), col('password_hash', 'varchar'), col('created_at', 'bigint')],
    uniques: [unique('uq_users_username', 'username')],
  }),
  new Table({
    name: 'organizations',
    columns: [pk(), col('name', 'varchar'), col('slug', 'varchar'), col('owner_user_id', 'varchar'), col('created_at', 'bigint')],
    uniques: [unique('uq_organizations_name', 'name'), unique('uq_organizations_slug', 'slug')],
    foreignKeys: [fk('owner_user_id', 'users', 'RESTRICT')],
    indices: [index('idx_organizations_owner', 'owner_user_id')],
  }),
  new Table({
    name: 'org_memberships',
    columns: [
      { ...col('org_id', 'varchar'), isPrimary: true },
      { ...col('user_id', 'varchar'), isPrimary: true },
      col('role', 'varchar'),
    ],
    checks: [check('chk_org_memberships_role', MEMBER_ROLE)],
    foreignKeys: [fk('org_id', 'organizations', 'CASCADE'), fk('user_id', 'users', 'CASCADE')],
    indices: [index('idx_org_memberships_user', 'user_id')],
  }),
  new Table({
    name: 'products',
    columns: [
      serial(),
      col('name', 'varchar'),
      col('slug', 'varchar'),
      col('owner_user_id', 'varchar', true),
      col('org_id', 'varchar', true),
      col('settings', 'text'),
      col('created_at', 'bigint'),
    ],
    uniques: [unique('uq_products_slug', 'slug')],
    checks: [check('chk_products_one_owner', oneOf('owner_user_id', 'org_id'))],
    foreignKeys: [fk('owner_user_id', 'users', 'RESTRICT'), fk('org_id', 'organizations', 'RESTRICT')],
    indices: [index('idx_products_owner', 'owner_user_id'), index('idx_products_org', 'org_id')],
  }),
  new Table({
    name: 'product_memberships',
    columns: [
      { ...col('product_id', 'integer'), isPrimary: true },
      { ...col('user_id', 'varchar'), isPrimary: true },
      col('role', 'varchar'),
    ],
    checks: [check('chk_product_memberships_role', MEMBER_ROLE)],
    foreignKeys: [fk('product_id', 'products', 'CASCADE'), fk('user_id', 'users', 'CASCADE')],
    indices: [index('idx_product_memberships_user', 'user_id')],
  }),
  new Table({
    name: 'invitations',
    columns: [
      pk(),
      col('org_id', 'varchar', true),
      col('product_id', 'integer', true),
      col('email', 'varchar'),
      col('role', 'varchar'),
      col('invited_by', 'varchar'),
      col('created_at', 'bigint'),
      col('accepted_at', 'bigint', true),
    ],
    checks: [check('chk_invitations_one_team', oneOf('org_id', 'product_id')), check('chk_invitations_role', MEMBER_ROLE)],
    foreignKeys: [fk('org_id', 'organizations', 'CASCADE'), fk('product_id', 'products', 'CASCADE'), fk('invited_by', 'users', 'CASCADE')],
    indices: [index('idx_invitations_email', 'email')],
  }),
  new Table({
    name: 'customers',
    columns: [pk(), col('product_id', 'integer'), col('username', 'varchar'), col('password_hash', 'varchar', true), col('created_at', 'bigint')],
    uniques: [unique('uq_customers_product_username', 'product_id', 'username')],
    foreignKeys: [fk('product_id', 'products', 'CASCADE')],
  }),
  new Table({
    name: 'api_users',
    columns: [
      pk(),
      col('username', 'varchar'),
      col('org_id', 'varchar', true),
      col('product_id', 'integer', true),
      col('scopes', 'text'),
      col('created_at', 'bigint'),
    ],
    checks: [check('chk_api_users_one_scope', oneOf('org_id', 'product_id'))],
    foreignKeys: [fk('org_id', 'organizations', 'CASCADE'), fk('product_id', 'products', 'CASCADE')],
  }),
  new Table({
    name: 'oauth_clients',
    columns: [
      pk(),
      col('secret_hash', 'varchar', true),
      col('name', 'varchar'),
      col('type', 'varchar'),
      col('redirect_uris', 'text'),
      col('product_id', 'integer', true),
      col('owner_user_id', 'varchar', true),
      col('created_at', 'bigint'),
    ],
    checks: [check('chk_oauth_clients_type', `"type" IN ('installed', 'web')`)],
    foreignKeys: [fk('product_id', 'products', 'CASCADE'), fk('owner_user_id', 'users', 'CASCADE')],
  }),
  new Table({
    name: 'access_tokens',
    columns: [
      pk('token_hash'),
      col('subject_kind', 'varchar'),
      col('subject_id', 'varchar'),
      col('client_id', 'varchar'),
      col('scopes', 'text'),
      col('expires_at', 'bigint', true),
      col('revoked_at', 'bigint', true),
      col('created_at', 'bigint'),
      col('refresh_token_hash', 'varchar', true),
    ],
    uniques: [unique('uq_access_tokens_refresh', 'refresh_token_hash')],
    checks: [check('chk_access_tokens_subject', `"subject_kind" IN ('user', 'customer', 'apiUser')`)],
    indices: [index('idx_access_tokens_subject', 'subject_kind', 'subject_id')],
  }),
  new Table({
    name: 'devices',
    columns: [
      pk(),
      col('name', 'varchar', true),
      col('notes', 'text', true),
      col('product_id', 'integer'),
      col('owner_user_id', 'varchar', true),
      col('customer_id', 'varchar', true),
      col('firmware_version', 'integer', true),
      col('variables', 'text'),
      col('functions', 'text'),
      col('online', 'boolean'),
      col('last_heard', 'bigint', true),
      col('last_handshake_at', 'bigint', true),
      col('development', 'boolean'),
      col('quarantined', 'boolean'),
      col('locked_firmware', 'integer', true),
      col('created_at', 'bigint'),
    ],
    checks: [check('chk_devices_id_length', `length("id") = 24`)],
    foreignKeys: [fk('product_id', 'products', 'RESTRICT'), fk('owner_user_id', 'users', 'SET NULL'), fk('customer_id', 'customers', 'SET NULL')],
    indices: [index('idx_devices_product', 'product_id'), index('idx_devices_customer', 'customer_id'), index('idx_devices_owner', 'owner_user_id')],
  }),
  new Table({
    name: 'device_credentials',
    columns: [pk('device_id'), col('secret_hash', 'varchar', true), col('cert_fingerprint', 'varchar', true), col('revoked_at', 'bigint', true)],
    uniques: [unique('uq_device_credentials_fingerprint', 'cert_fingerprint')],
    foreignKeys: [fk('device_id', 'devices', 'CASCADE')],
  }),
  new Table({
    name: 'device_groups',
    columns: [serial(), col('product_id', 'integer'), col('name', 'varchar'), col('description', 'text', true), col('color', 'varchar', true)],
    uniques: [unique('uq_device_groups_product_name', 'product_id', 'name')],
    foreignKeys: [fk('product_id', 'products', 'CASCADE')],
  }),
  new Table({
    name: 'device_group_members',
    columns: [
      { ...col('group_id', 'integer'), isPrimary: true },
      { ...col('device_id', 'varchar'), isPrimary: true },
    ],
    foreignKeys: [fk('group_id', 'device_groups', 'CASCADE'), fk('device_id', 'devices', 'CASCADE')],
    indices: [index('idx_device_group_members_device', 'device_id')],
  }),
  new Table({
    name: 'sim_cards',
    columns: [pk('iccid'), col('product_id', 'integer'), col('status', 'varchar'), col('data_limit', 'integer', true), col('created_at', 'bigint')],
    foreignKeys: [fk('product_id', 'products', 'CASCADE')],
    indices: [index('idx_sim_cards_product', 'product_id')],
  }),
  new Table({
    name: 'firmware_versions',
    columns: [
      serial(),
      col('product_id', 'integer'),
      col('version', 'integer'),
      col('title', 'varchar'),
      col('description', 'text', true),
      col('size', 'integer'),
      col('sha256', 'varchar'),
      col('path', 'varchar'),
      col('uploaded_by', 'varchar', true),
      col('uploaded_at', 'bigint'),
      col('released', 'boolean'),
      col('product_default', 'boolean'),
    ],
    uniques: [unique('uq_firmware_versions_product_version', 'product_id', 'version')],
    foreignKeys: [fk('product_id', 'products', 'CASCADE'), fk('uploaded_by', 'users', 'SET NULL')],
  }),
  new Table({
    name: 'integrations',
    columns: [
      pk(),
      col('product_id', 'integer'),
      col('event_prefix', 'varchar'),
      col('url', 'text'),
      col('template', 'text', true),
      col('enabled', 'boolean'),
      col('failures', 'integer'),
      col('created_at', 'bigint'),
    ],
    foreignKeys: [fk('product_id', 'products', 'CASCADE')],
    indices: [index('idx_integrations_product', 'product_id')],
  }),
  new Table({
    name: 'vitals_latest',
    columns: [pk('device_id'), col('metric_values', 'text'), col('updated_at', 'bigint')],
    foreignKeys: [fk('device_id', 'devices', 'CASCADE')],
  }),
  new Table({
    name: 'vitals_history',
    columns: [serial(), col('device_id', 'varchar'), col('metric_values', 'text'), col('at', 'bigint')],
    foreignKeys: [fk('device_id', 'devices', 'CASCADE')],
    indices: [index('idx_vitals_history_device_at', 'device_id', 'at')],
  }),
  new Table({
    name: 'error_reports',
    columns: [
      serial(),
      col('device_id', 'varchar'),
      col('product_id', 'integer'),
      col('firmware_version', 'integer', true),
      col('source', 'varchar'),
      col('name', 'varchar'),
      col('message', 'text'),
      col('stack', 'text'),
      col('count', 'integer'),
      col('uptime', 'integer'),
      col('at', 'bigint'),
    ],
    foreignKeys: [fk('device_id', 'devices', 'CASCADE'), fk('product_id', 'products', 'CASCADE')],
    indices: [index('idx_error_reports_product_firmware', 'product_id', 'firmware_version'), index('idx_error_reports_device_at', 'device_id', 'at')],
  }),
  new Table({
    name: 'audit_log',
    columns: [
      serial(),
      col('at', 'bigint'),
      col('actor_kind', 'varchar'),
      col('actor_id', 'varchar'),
      col('action', 'varchar'),
      col('resource_kind', 'varchar'),
      col('resource_id', 'varchar'),
      col('allowed', 'boolean'),
      col('status', 'integer'),
      col('reason', 'text'),
    ],
    indices: [
      index('idx_audit_log_actor', 'actor_kind', 'actor_id'),
      index('idx_audit_log_resource', 'resource_kind', 'resource_id'),
      index('idx_audit_log_at', 'at'),
    ],
  }),
];

export class Initial1732406400000 implements MigrationInterface {
  // Explicit: typeorm reads the timestamp from the name, and a bundler may rename classes.
  name = 'Initial1732406400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    for (const table of TABLES) await queryRunner.createTable(table, false, true, true);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of [...TABLES].reverse()) await queryRunner.dropTable(table.name, false, true, true);
  }
}
