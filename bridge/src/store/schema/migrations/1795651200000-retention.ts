/**
 * Vitals history and error reports are pruned by age (store.prune): an index
 * on each one's time, so a prune finds old rows without reading the table.
 * Self-contained like the others.
 */
import { Table, TableIndex } from 'typeorm';
import type { MigrationInterface, QueryRunner } from 'typeorm';

// The table by name (a Table, not a string): typeorm then writes the index without reading the table first.
const INDEXES: [Table, TableIndex][] = [
  [new Table({ name: 'vitals_history' }), new TableIndex({ name: 'idx_vitals_history_at', columnNames: ['at'] })],
  [new Table({ name: 'error_reports' }), new TableIndex({ name: 'idx_error_reports_at', columnNames: ['at'] })],
];

export class Retention1795651200000 implements MigrationInterface {
  name = 'Retention1795651200000';

  async up(q: QueryRunner): Promise<void> {
    for (const [table, index] of INDEXES) await q.createIndex(table, index);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const [table, index] of INDEXES) await q.dropIndex(table, index);
  }
}
