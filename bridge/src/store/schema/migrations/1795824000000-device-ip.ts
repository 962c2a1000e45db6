/**
 * The address a device last connected from (Particle's last_ip_address), set
 * when its session starts. Self-contained like the others.
 */
import { Table, TableColumn } from 'typeorm';
import type { MigrationInterface, QueryRunner } from 'typeorm';

const NAME = 'devices';

/** SQLite rebuilds the table and reads it back by name; PostgreSQL alters in place (see the integration-owners migration). */
function table(q: QueryRunner): Table | string {
  return q.connection.driver.options.type === 'postgres' ? new Table({ name: NAME }) : NAME;
}

export class DeviceIp1795824000000 implements MigrationInterface {
  name = 'DeviceIp1795824000000';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumn(table(q), new TableColumn({ name: 'last_ip_address', type: 'varchar', isNullable: true }));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn(table(q), 'last_ip_address');
  }
}
