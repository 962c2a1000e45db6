/**
 * Product ids start at 1000. particle-cli tells a product's device from a
 * developer's own by `product_id !== platform_id`, and Particle's platform ids
 * are small numbers (6 is the Photon, every device here): a product numbered
 * 6 made its devices look like plain Photons, so `particle list` showed no
 * product and `particle flash` chose the wrong path. Particle's own product
 * ids are in the thousands, past every platform id.
 *
 * Only ids handed out from now on move: a product already numbered below
 * 1000 keeps its id, since every table that names a product refers to it.
 * Self-contained like the others.
 */
import type { MigrationInterface, QueryRunner } from 'typeorm';
import { Query } from 'typeorm/driver/Query.js';

/** The last id before the first product's. */
const BEFORE_FIRST = 999;

export class ProductIds1795910400000 implements MigrationInterface {
  name = 'ProductIds1795910400000';

  async up(q: QueryRunner): Promise<void> {
    if (q.connection.driver.options.type === 'postgres') {
      // Through executeQueries, as typeorm's own schema changes go, so SQL-in-memory mode records it rather than sending it.
      const setval = new Query(`SELECT setval(pg_get_serial_sequence('products', 'id'), GREATEST(${BEFORE_FIRST}, (SELECT COALESCE(MAX(id), 0) FROM products)))`);
      await (q as unknown as { executeQueries(up: Query, down: Query[]): Promise<void> }).executeQueries(setval, []);
      return;
    }
    // An AUTOINCREMENT table's next id is one past sqlite_sequence's, which has no row before the first insert.
    await q.query(`UPDATE sqlite_sequence SET seq = ${BEFORE_FIRST} WHERE name = 'products' AND seq < ${BEFORE_FIRST}`);
    await q.query(`INSERT INTO sqlite_sequence (name, seq) SELECT 'products', ${BEFORE_FIRST} WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'products')`);
  }

  async down(): Promise<void> {
    // Nothing to undo: ids already given stay, and later ones may follow them.
  }
}
