/**
 * OTA for a fleet: the version released to each device group, rollouts, and
 * one job per device and image. Self-contained like the first migration.
 */
import { Table, TableForeignKey, TableIndex } from 'typeorm';
import type { MigrationInterface, QueryRunner, TableColumnOptions } from 'typeorm';

type OnDelete = 'CASCADE' | 'SET NULL';

const col = (name: string, type: 'varchar' | 'text' | 'integer' | 'bigint' | 'boolean', nullable = false): TableColumnOptions => ({ name, type, isNullable: nullable });
const serial = (): TableColumnOptions => ({ name: 'id', type: 'integer', isPrimary: true, isGenerated: true, generationStrategy: 'increment' });
const fk = (column: string, table: string, onDelete: OnDelete): TableForeignKey =>
  new TableForeignKey({ columnNames: [column], referencedTableName: table, referencedColumnNames: ['id'], onDelete });
const index = (name: string, ...columnNames: string[]): TableIndex => new TableIndex({ name, columnNames });

const TABLES = [
  new Table({
    // The version released to a group (one per group).
    name: 'group_releases',
    columns: [{ ...col('group_id', 'integer'), isPrimary: true }, col('version', 'integer')],
    foreignKeys: [fk('group_id', 'device_groups', 'CASCADE')],
  }),
  new Table({
    name: 'rollouts',
    columns: [
      serial(),
      col('product_id', 'integer'),
      col('version', 'integer'),
      col('product_default', 'boolean'),
      col('groups', 'text'),
      col('concurrency', 'integer'),
      col('batch_size', 'integer'),
      col('failure_permille', 'integer'),
      col('min_attempts', 'integer'),
      col('state', 'varchar'),
      col('reason', 'text', true),
      col('created_by', 'varchar', true),
      col('created_at', 'bigint'),
      col('updated_at', 'bigint'),
      col('count_from', 'bigint'),
    ],
    foreignKeys: [fk('product_id', 'products', 'CASCADE'), fk('created_by', 'users', 'SET NULL')],
    indices: [index('idx_rollouts_product_state', 'product_id', 'state')],
  }),
  new Table({
    name: 'ota_jobs',
    columns: [
      serial(),
      col('device_id', 'varchar'),
      col('product_id', 'integer'),
      col('version', 'integer'),
      col('size', 'integer'),
      col('sha256', 'varchar'),
      col('path', 'varchar'),
      col('source', 'varchar'),
      col('rollout_id', 'integer', true),
      col('state', 'varchar'),
      col('offset', 'integer'),
      col('attempts', 'integer'),
      col('reason', 'varchar', true),
      col('created_by', 'varchar', true),
      col('created_at', 'bigint'),
      col('updated_at', 'bigint'),
      col('finished_at', 'bigint', true),
    ],
    foreignKeys: [fk('device_id', 'devices', 'CASCADE'), fk('product_id', 'products', 'CASCADE'), fk('rollout_id', 'rollouts', 'SET NULL')],
    indices: [index('idx_ota_jobs_device_state', 'device_id', 'state'), index('idx_ota_jobs_rollout_state', 'rollout_id', 'state')],
  }),
];

export class Ota1795392000000 implements MigrationInterface {
  name = 'Ota1795392000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    for (const table of TABLES) await queryRunner.createTable(table, false, true, true);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of [...TABLES].reverse()) await queryRunner.dropTable(table.name, false, true, true);
  }
}
