/**
 * Webhooks learned Particle's default data: one with no body template now
 * sends {event, data, published_at, coreid} as a web form, a json or form
 * template gets that data under its fields, and GET puts it in the query
 * string, unless the webhook says noDefaults. Webhooks made before keep
 * sending exactly what they sent: each gets noDefaults, and one with no
 * template gets the JSON body it used to send as an explicit json template.
 * A row from before is one whose template has no noDefaults key (every newer
 * one has it). Data only: no DDL. Self-contained like the others.
 */
import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The JSON body a webhook with no template sent before. */
const OLD_DEFAULT_BODY = { event: '{{{PARTICLE_EVENT_NAME}}}', data: '{{{PARTICLE_EVENT_VALUE}}}', published_at: '{{{PARTICLE_PUBLISHED_AT}}}', coreid: '{{{PARTICLE_DEVICE_ID}}}' };

type Template = { json?: unknown; form?: unknown; body?: unknown; noDefaults?: boolean };

async function rewrite(q: QueryRunner, change: (t: Template) => boolean): Promise<void> {
  // Rendering SQL with no server (typeorm's memory mode) has no rows to read.
  if ((q as unknown as { sqlMemoryMode?: boolean }).sqlMemoryMode) return;
  const set = q.connection.driver.options.type === 'postgres' ? 'UPDATE "integrations" SET "template" = $1 WHERE "id" = $2' : 'UPDATE "integrations" SET "template" = ? WHERE "id" = ?';
  const rows = (await q.query('SELECT "id", "template" FROM "integrations"')) as { id: string; template: string | null }[];
  for (const r of rows) {
    const t = JSON.parse(r.template ?? '{}') as Template;
    if (change(t)) await q.query(set, [JSON.stringify(t), r.id]);
  }
}

export class WebhookDefaults1795564800000 implements MigrationInterface {
  name = 'WebhookDefaults1795564800000';

  async up(q: QueryRunner): Promise<void> {
    await rewrite(q, (t) => {
      if ('noDefaults' in t) return false;
      if (t.json == null && t.form == null && t.body == null) t.json = OLD_DEFAULT_BODY;
      t.noDefaults = true;
      return true;
    });
  }

  async down(q: QueryRunner): Promise<void> {
    // The older code ignores noDefaults; the explicit body it sent by default goes back to being implicit.
    await rewrite(q, (t) => {
      if (t.noDefaults !== true || JSON.stringify(t.json) !== JSON.stringify(OLD_DEFAULT_BODY)) return false;
      t.json = null;
      return true;
    });
  }
}
