/**
 * Column shapes the entities share. Types are chosen from what SQLite and
 * PostgreSQL both accept, so the same entities describe both databases:
 *   - ids of people, orgs and other named things: varchar (24 hex, app-made);
 *   - times: bigint epoch milliseconds (no time-zone or text-format
 *     ambiguity; PostgreSQL's driver returns bigint as a string, hence the
 *     transformer);
 *   - JSON: text (simple-json), which PostgreSQL could later turn into jsonb;
 *   - booleans: boolean (SQLite stores 0/1).
 * No column has a database default: the store writes every value.
 */
import type { EntitySchemaColumnOptions } from 'typeorm';

/** What happens to a row when the row it refers to is deleted. */
export type OnDelete = 'CASCADE' | 'RESTRICT' | 'SET NULL';

const epochMs = {
  to: (v: number | null | undefined) => v,
  from: (v: string | number | null) => (v === null || v === undefined ? v : Number(v)),
};

export function id(): EntitySchemaColumnOptions {
  return { type: 'varchar', primary: true };
}

/** integer, generated: SQLite AUTOINCREMENT, PostgreSQL serial. */
export function serial(): EntitySchemaColumnOptions {
  return { type: 'integer', primary: true, generated: 'increment' };
}

export function varchar(name: string, nullable = false): EntitySchemaColumnOptions {
  return { type: 'varchar', name, nullable };
}

export function text(name: string, nullable = false): EntitySchemaColumnOptions {
  return { type: 'text', name, nullable };
}

export function integer(name: string, nullable = false): EntitySchemaColumnOptions {
  return { type: 'integer', name, nullable };
}

export function ms(name: string, nullable = false): EntitySchemaColumnOptions {
  return { type: 'bigint', name, nullable, transformer: epochMs };
}

/** A count that can pass 2^31 (messages, bytes): bigint, read back as a number. */
export function counter(name: string): EntitySchemaColumnOptions {
  return { type: 'bigint', name, transformer: epochMs };
}

export function bool(name: string): EntitySchemaColumnOptions {
  return { type: 'boolean', name };
}

export function json(name: string): EntitySchemaColumnOptions {
  return { type: 'simple-json', name };
}

/** A foreign key column: varchar to a text id, integer to a product or a group. */
export function ref(
  name: string,
  target: string,
  onDelete: OnDelete,
  opts: { nullable?: boolean; type?: 'varchar' | 'integer'; primary?: boolean } = {},
): EntitySchemaColumnOptions {
  return {
    type: opts.type ?? 'varchar',
    name,
    nullable: opts.nullable ?? false,
    primary: opts.primary ?? false,
    foreignKey: { target, onDelete },
  };
}

/** Team roles a membership row may hold: Owner lives on the org or product row itself. */
export const MEMBER_ROLE_CHECK = `"role" IN ('administrator', 'developer', 'support', 'viewer')`;
