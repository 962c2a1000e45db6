/**
 * The permission matrix in protocol/ against the tables it was written from:
 * docs/permissions.md in this repo and shared/DESIGN.md beside it (present
 * in every checkout CI makes), cell by cell.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  canGrant, isAction, minRoleFor, ORG_ACTIONS, ORG_ROLE_CASCADE, PRODUCT_ACTIONS, Role, roleAllows, roleAtLeast, ROLE_TITLES, ROLES,
} from '@flotilla/protocol';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SOURCES = [join(root, 'docs', 'permissions.md'), join(root, '..', 'shared', 'DESIGN.md')];
/** Column order of both tables: O, A, D, S, V. */
const COLUMNS: Role[] = ['owner', 'administrator', 'developer', 'support', 'viewer'];

/** Table rows as arrays of trimmed cells (empty cells kept), from every `| ... |` line. */
function rows(md: string): string[][] {
  return md
    .split('\n')
    .filter((l) => l.startsWith('|') && !/^\|[-\s|]+\|$/.test(l))
    .map((l) => l.slice(1, -1).split('|').map((c) => c.trim()));
}

for (const source of SOURCES) {
  describe('permission matrix vs ' + source.slice(root.length - 4), function () {
    before(function () {
      // shared/ sits beside every clone CI makes; a bare clone elsewhere has only docs/.
      if (!existsSync(source)) this.skip();
    });

    // docs/permissions.md gives each action's id beside its title (what API users' scopes are written in); DESIGN.md does not.
    const ids = source.includes(join(root, 'docs')) ? 1 : 0;
    /** A row without its id cell (checked against `action` when there is one). */
    const idChecked = (r: string[], at: number, action: string): string[] => {
      if (!ids) return r;
      assert.equal(r[at], action === '' ? '' : '`' + action + '`', (r[at - 1] ?? r[0]) + ': id');
      return [...r.slice(0, at), ...r.slice(at + 1)];
    };

    it('has every product action, cell by cell', () => {
      const table = rows(readFileSync(source, 'utf8')).filter((r) => r.length === 7 + ids && r[0] !== 'area');
      assert.equal(table.length, PRODUCT_ACTIONS.length, 'product rows');
      for (const row of table) {
        const entry = PRODUCT_ACTIONS.find((a) => a.title === row[1]);
        assert.ok(entry, 'no action titled "' + row[1] + '"');
        const r = idChecked(row, 2, entry.action);
        assert.equal(entry.area, r[0], r[1] + ': area');
        COLUMNS.forEach((role, i) => {
          assert.equal(roleAllows(role, entry.action), r[2 + i] === '✓', r[1] + ' × ' + role);
        });
      }
    });

    it('has every org action and the org-role cascade, cell by cell', () => {
      const table = rows(readFileSync(source, 'utf8'))
        .filter((r) => r.length === 6 + ids && r[0] !== 'action')
        .map((r) => idChecked(r, 1, r[0] === 'Role on every product of the org' ? '' : ORG_ACTIONS.find((a) => a.title === r[0])?.action ?? '?'));
      const cascade = table.find((r) => r[0] === 'Role on every product of the org');
      assert.ok(cascade, 'no cascade row');
      COLUMNS.forEach((role, i) => {
        // The org's Owner is "Administrator (Owner)" of its products: an Administrator, as the table writes it.
        assert.equal(ROLE_TITLES[ORG_ROLE_CASCADE[role]].replace(' (Owner)', ''), cascade[1 + i], 'cascade × ' + role);
      });
      const actions = table.filter((r) => r !== cascade);
      assert.equal(actions.length, ORG_ACTIONS.length, 'org rows');
      for (const r of actions) {
        const entry = ORG_ACTIONS.find((a) => a.title === r[0]);
        assert.ok(entry, 'no org action titled "' + r[0] + '"');
        COLUMNS.forEach((role, i) => assert.equal(roleAllows(role, entry.action), r[1 + i] === '✓', r[0] + ' × ' + role));
      }
    });
  });
}

describe('permission helpers', () => {
  it('orders the roles Owner > Administrator > Developer > Support > View-only', () => {
    for (let i = 0; i < ROLES.length; i++)
      for (let j = 0; j < ROLES.length; j++) assert.equal(roleAtLeast(ROLES[i], ROLES[j]), i <= j, ROLES[i] + ' >= ' + ROLES[j]);
  });

  it('knows every action id and no other', () => {
    for (const a of [...PRODUCT_ACTIONS, ...ORG_ACTIONS]) {
      assert.ok(isAction(a.action));
      assert.equal(minRoleFor(a.action), a.min);
    }
    assert.ok(!isAction('device.nuke'));
    assert.ok(!isAction('toString'));
    assert.ok(!roleAllows('owner', 'toString' as never));
  });

  it('lets nobody grant a role above their own, nor the Owner role', () => {
    for (const granter of ROLES)
      for (const role of ROLES) {
        const expected = role !== 'owner' && roleAtLeast(granter, 'administrator') && roleAtLeast(granter, role);
        assert.equal(canGrant(granter, role), expected, granter + ' grants ' + role);
      }
    assert.ok(canGrant('administrator', 'administrator'));
    assert.ok(!canGrant('developer', 'viewer'), 'managing the team needs Administrator');
    assert.ok(!canGrant('owner', 'owner'));
  });
});
