/**
 * A user's claim code may name no product (Particle's getClaimCode without
 * one): the device that presents it is claimed if the user may add devices
 * to the device's own product. The product column becomes optional; a
 * check keeps it set for a customer's code (a customer is one product's).
 * Existing codes keep their product. Self-contained like the others.
 */
import { Table, TableCheck, TableColumn } from 'typeorm';
import type { MigrationInterface, QueryRunner } from 'typeorm';

const NAME = 'claim_codes';
const CUSTOMER_HAS_PRODUCT = new TableCheck({ name: 'chk_claim_codes_customer_product', expression: `"customer_id" IS NULL OR "product_id" IS NOT NULL` });

/** SQLite rebuilds the table at each step and reads it back by name; PostgreSQL alters in place (see the integration-owners migration). */
function table(q: QueryRunner): Table | string {
  if (q.connection.driver.options.type !== 'postgres') return NAME;
  return new Table({ name: NAME, columns: [{ name: 'product_id', type: 'integer', isNullable: false }] });
}

export class UserClaimCodes1795737600000 implements MigrationInterface {
  name = 'UserClaimCodes1795737600000';

  async up(q: QueryRunner): Promise<void> {
    const t = table(q);
    await q.changeColumn(t, 'product_id', new TableColumn({ name: 'product_id', type: 'integer', isNullable: true }));
    await q.createCheckConstraint(t, CUSTOMER_HAS_PRODUCT);
  }

  async down(q: QueryRunner): Promise<void> {
    // A code without a product has no place in the older table.
    await q.query(`DELETE FROM "${NAME}" WHERE "product_id" IS NULL`);
    await q.dropCheckConstraint(NAME, CUSTOMER_HAS_PRODUCT.name!);
    await q.changeColumn(NAME, 'product_id', new TableColumn({ name: 'product_id', type: 'integer', isNullable: false }));
  }
}
