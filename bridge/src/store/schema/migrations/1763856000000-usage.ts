/**
 * Usage per product per day, for the billing & usage view: messages and bytes
 * the devices sent, and which devices were active that day (counted distinct).
 * Self-contained like the first migration: its helpers are its own.
 */
import { Table, TableForeignKey, TableIndex } from 'typeorm';
import type { MigrationInterface, QueryRunner, TableColumnOptions } from 'typeorm';

const col = (name: string, type: 'varchar' | 'integer' | 'bigint', primary = false): TableColumnOptions => ({ name, type, isNullable: false, isPrimary: primary });
const productFk = () => new TableForeignKey({ columnNames: ['product_id'], referencedTableName: 'products', referencedColumnNames: ['id'], onDelete: 'CASCADE' });

const TABLES = [
  new Table({
    name: 'usage_daily',
    // day: 'YYYY-MM-DD' in UTC.
    columns: [col('product_id', 'integer', true), col('day', 'varchar', true), col('messages', 'bigint'), col('bytes', 'bigint')],
    foreignKeys: [productFk()],
  }),
  new Table({
    name: 'device_days',
    // No foreign key to devices: a removed device still counted as active on the days it was.
    columns: [col('product_id', 'integer', true), col('day', 'varchar', true), col('device_id', 'varchar', true)],
    foreignKeys: [productFk()],
    indices: [new TableIndex({ name: 'idx_device_days_day', columnNames: ['day'] })],
  }),
];

export class Usage1763856000000 implements MigrationInterface {
  name = 'Usage1763856000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    for (const table of TABLES) await queryRunner.createTable(table, false, true, true);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of [...TABLES].reverse()) await queryRunner.dropTable(table.name, false, true, true);
  }
}
