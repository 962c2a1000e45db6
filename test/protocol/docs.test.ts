/** docs/protocol.md describes every message kind, with its code and every field in wire order. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { KINDS, LAYOUTS, REQUEST_ARGS } from '@flotilla/protocol';

const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');

describe('docs/protocol.md', () => {
  for (const k of KINDS) {
    it('documents ' + k.kind + ' (code ' + k.code + ') field by field', () => {
      const start = doc.indexOf('### ' + k.kind + ' (code ' + k.code + ')');
      assert.ok(start >= 0, 'no heading for ' + k.kind);
      const next = doc.indexOf('\n##', start + 4);
      const section = doc.slice(start, next < 0 ? undefined : next);
      const documented = [...section.matchAll(/^\| (\w+) \|/gm)].map((m) => m[1]).filter((f) => f !== 'field');
      const fields = LAYOUTS[k.kind].map((f) => f[0]);
      if (k.kind === 'request') for (const args of Object.values(REQUEST_ARGS)) for (const [f] of args) if (!fields.includes(f)) fields.push(f);
      assert.deepEqual(documented, fields);
    });
  }
});
