/**
 * Integrations owned by a user or an org, beside those of a product: the
 * product column becomes optional, a user and an org column join it, and a
 * check keeps exactly one of the three set. Existing rows are a product's.
 * Self-contained like the others: a shipped migration must not change when
 * the entities do.
 */
import { Table, TableCheck, TableColumn, TableForeignKey, TableIndex } from 'typeorm';
import type { MigrationInterface, QueryRunner } from 'typeorm';

const NAME = 'integrations';
const ONE_OWNER =
  '("product_id" IS NOT NULL AND "user_id" IS NULL AND "org_id" IS NULL) OR ("product_id" IS NULL AND "user_id" IS NOT NULL AND "org_id" IS NULL) OR ("product_id" IS NULL AND "user_id" IS NULL AND "org_id" IS NOT NULL)';

const owner = (name: string) => new TableColumn({ name, type: 'varchar', isNullable: true });
const ownerKey = (column: string, table: string) => new TableForeignKey({ columnNames: [column], referencedTableName: table, referencedColumnNames: ['id'], onDelete: 'CASCADE' });

/**
 * The table each step works on. SQLite rebuilds the table at every step, so
 * each needs the table as the previous step left it: its name (typeorm reads
 * it back). PostgreSQL alters in place and needs only the columns a step
 * touches: a description (so the DDL also renders with no server).
 */
function table(q: QueryRunner): Table | string {
  if (q.connection.driver.options.type !== 'postgres') return NAME;
  return new Table({ name: NAME, columns: [{ name: 'product_id', type: 'integer', isNullable: false }] });
}

export class IntegrationOwners1795521600000 implements MigrationInterface {
  name = 'IntegrationOwners1795521600000';

  async up(q: QueryRunner): Promise<void> {
    const t = table(q);
    await q.changeColumn(t, 'product_id', new TableColumn({ name: 'product_id', type: 'integer', isNullable: true }));
    await q.addColumns(t, [owner('user_id'), owner('org_id')]);
    await q.createForeignKeys(t, [ownerKey('user_id', 'users'), ownerKey('org_id', 'organizations')]);
    await q.createIndices(t, [new TableIndex({ name: 'idx_integrations_user', columnNames: ['user_id'] }), new TableIndex({ name: 'idx_integrations_org', columnNames: ['org_id'] })]);
    await q.createCheckConstraint(t, new TableCheck({ name: 'chk_integrations_one_owner', expression: ONE_OWNER }));
  }

  async down(q: QueryRunner): Promise<void> {
    // A user's or an org's integrations have no place in the older table.
    await q.query(`DELETE FROM "${NAME}" WHERE "product_id" IS NULL`);
    await q.dropCheckConstraint(NAME, 'chk_integrations_one_owner');
    await q.dropIndex(NAME, 'idx_integrations_org');
    await q.dropIndex(NAME, 'idx_integrations_user');
    const loaded = await q.getTable(NAME);
    for (const fk of loaded!.foreignKeys.filter((k) => k.columnNames[0] === 'user_id' || k.columnNames[0] === 'org_id')) await q.dropForeignKey(NAME, fk);
    await q.dropColumns(NAME, ['org_id', 'user_id']);
    await q.changeColumn(NAME, 'product_id', new TableColumn({ name: 'product_id', type: 'integer', isNullable: false }));
  }
}
