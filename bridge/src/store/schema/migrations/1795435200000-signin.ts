/**
 * How a product's end users sign in: OAuth authorization codes, the Flotilla
 * user behind a customer linked by the code flow, and device claim codes.
 * Self-contained like the first migration.
 */
import { Table, TableForeignKey } from 'typeorm';
import type { MigrationInterface, QueryRunner, TableColumnOptions } from 'typeorm';

type OnDelete = 'CASCADE' | 'SET NULL';

const col = (name: string, type: 'varchar' | 'integer' | 'bigint', nullable = false): TableColumnOptions => ({ name, type, isNullable: nullable });
const key = (name: string): TableColumnOptions => ({ name, type: 'varchar', isPrimary: true, isNullable: false });
const fk = (column: string, table: string, onDelete: OnDelete): TableForeignKey =>
  new TableForeignKey({ columnNames: [column], referencedTableName: table, referencedColumnNames: ['id'], onDelete });

const TABLES = [
  new Table({
    name: 'oauth_codes',
    columns: [key('code_hash'), col('client_id', 'varchar'), col('customer_id', 'varchar'), col('redirect_uri', 'varchar'), col('code_challenge', 'varchar'), col('expires_at', 'bigint'), col('used_at', 'bigint', true)],
    foreignKeys: [fk('client_id', 'oauth_clients', 'CASCADE'), fk('customer_id', 'customers', 'CASCADE')],
  }),
  new Table({
    name: 'customer_users',
    columns: [key('customer_id'), col('user_id', 'varchar'), col('product_id', 'integer')],
    uniques: [{ name: 'uq_customer_users_product_user', columnNames: ['product_id', 'user_id'] }],
    foreignKeys: [fk('customer_id', 'customers', 'CASCADE'), fk('user_id', 'users', 'CASCADE'), fk('product_id', 'products', 'CASCADE')],
  }),
  new Table({
    name: 'claim_codes',
    columns: [
      key('code_hash'),
      col('product_id', 'integer'),
      col('customer_id', 'varchar', true),
      col('user_id', 'varchar', true),
      col('created_at', 'bigint'),
      col('expires_at', 'bigint'),
      col('device_id', 'varchar', true),
      col('claimed_at', 'bigint', true),
    ],
    checks: [{ name: 'chk_claim_codes_one_claimant', expression: `("customer_id" IS NULL) <> ("user_id" IS NULL)` }],
    foreignKeys: [fk('product_id', 'products', 'CASCADE'), fk('customer_id', 'customers', 'CASCADE'), fk('user_id', 'users', 'CASCADE'), fk('device_id', 'devices', 'SET NULL')],
  }),
];

export class Signin1795435200000 implements MigrationInterface {
  name = 'Signin1795435200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    for (const table of TABLES) await queryRunner.createTable(table, false, true, true);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of [...TABLES].reverse()) await queryRunner.dropTable(table.name, false, true, true);
  }
}
