/**
 * Organizations as a billing account: products moved into an org (transfer
 * requests and their outcome), users whose personal usage the org pays for,
 * billing information (an org's, or a personal product's), and two more
 * meters per day: data operations per product, SIM data per SIM.
 * Self-contained like the first migration: its helpers are its own. Only new
 * tables: the existing ones are left as they are.
 */
import { Table, TableForeignKey, TableIndex } from 'typeorm';
import type { MigrationInterface, QueryRunner, TableColumnOptions } from 'typeorm';

type OnDelete = 'CASCADE' | 'SET NULL';

const col = (name: string, type: 'varchar' | 'text' | 'integer' | 'bigint', nullable = false): TableColumnOptions => ({ name, type, isNullable: nullable });
const key = (name: string, type: 'varchar' | 'integer'): TableColumnOptions => ({ name, type, isNullable: false, isPrimary: true });
const fk = (column: string, table: string, onDelete: OnDelete): TableForeignKey =>
  new TableForeignKey({ columnNames: [column], referencedTableName: table, referencedColumnNames: ['id'], onDelete });
const index = (name: string, ...columnNames: string[]): TableIndex => new TableIndex({ name, columnNames });

const TABLES = [
  new Table({
    // A personal product's move into an org: asked by its Owner, consented to (or not) by an org Administrator.
    name: 'product_transfers',
    columns: [
      key('id', 'varchar'),
      col('product_id', 'integer'),
      col('org_id', 'varchar'),
      col('requested_by', 'varchar'),
      col('state', 'varchar'),
      col('decided_by', 'varchar', true),
      col('created_at', 'bigint'),
      col('decided_at', 'bigint', true),
    ],
    checks: [{ name: 'chk_product_transfers_state', expression: `"state" IN ('pending', 'accepted', 'declined', 'cancelled')` }],
    foreignKeys: [fk('product_id', 'products', 'CASCADE'), fk('org_id', 'organizations', 'CASCADE'), fk('requested_by', 'users', 'CASCADE'), fk('decided_by', 'users', 'SET NULL')],
    indices: [index('idx_product_transfers_product', 'product_id'), index('idx_product_transfers_org', 'org_id')],
  }),
  new Table({
    // Whitelisted users: one paying org per user.
    name: 'org_billed_users',
    columns: [key('user_id', 'varchar'), col('org_id', 'varchar'), col('added_by', 'varchar', true), col('created_at', 'bigint')],
    foreignKeys: [fk('user_id', 'users', 'CASCADE'), fk('org_id', 'organizations', 'CASCADE'), fk('added_by', 'users', 'SET NULL')],
    indices: [index('idx_org_billed_users_org', 'org_id')],
  }),
  new Table({
    // An org's billing information, or a personal product's (an org's products are billed to the org).
    name: 'billing_accounts',
    columns: [
      { name: 'id', type: 'integer', isPrimary: true, isGenerated: true, generationStrategy: 'increment' },
      col('org_id', 'varchar', true),
      col('product_id', 'integer', true),
      col('name', 'varchar', true),
      col('email', 'varchar', true),
      col('address', 'text', true),
      col('country', 'varchar', true),
      col('tax_id', 'varchar', true),
      col('updated_by', 'varchar', true),
      col('updated_at', 'bigint'),
    ],
    uniques: [{ name: 'uq_billing_accounts_org', columnNames: ['org_id'] }, { name: 'uq_billing_accounts_product', columnNames: ['product_id'] }],
    checks: [{ name: 'chk_billing_accounts_one_owner', expression: `("org_id" IS NULL) <> ("product_id" IS NULL)` }],
    foreignKeys: [fk('org_id', 'organizations', 'CASCADE'), fk('product_id', 'products', 'CASCADE'), fk('updated_by', 'users', 'SET NULL')],
  }),
  new Table({
    // Particle's billing unit, per product per day (UTC).
    name: 'data_ops_daily',
    columns: [key('product_id', 'integer'), key('day', 'varchar'), col('operations', 'bigint')],
    foreignKeys: [fk('product_id', 'products', 'CASCADE')],
  }),
  new Table({
    // Cellular data per SIM per day, as its carrier reports it; kept with the product it was billed to,
    // after the SIM is removed (no foreign key to sim_cards, like device_days).
    name: 'sim_data_daily',
    columns: [key('product_id', 'integer'), key('iccid', 'varchar'), key('day', 'varchar'), col('bytes', 'bigint')],
    foreignKeys: [fk('product_id', 'products', 'CASCADE')],
  }),
];

export class Orgs1795478400000 implements MigrationInterface {
  name = 'Orgs1795478400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    for (const table of TABLES) await queryRunner.createTable(table, false, true, true);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of [...TABLES].reverse()) await queryRunner.dropTable(table.name, false, true, true);
  }
}
