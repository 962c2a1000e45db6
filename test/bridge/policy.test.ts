/**
 * The bridge's policy (bridge/src/policy) against protocol's matrix data, cell
 * by cell: every expected verdict is computed from PRODUCT_ACTIONS /
 * ORG_ACTIONS / ORG_ROLE_CASCADE / ROLES, never from a copied table. Every
 * input is deeply frozen, so a decide() that wrote to one would throw.
 */
import assert from 'node:assert/strict';
import { ORG_ACTIONS, ORG_ROLE_CASCADE, PRODUCT_ACTIONS, ROLES } from '@flotilla/protocol';
import type { Action, OrgAction, ProductAction, Role } from '@flotilla/protocol';
import {
  canChangeRole, canInvite, canRemove, decide, inviteToOrg, productTeamView, userOrgRole, userProductRole,
} from '../../bridge/src/policy/index.js';
import type { Actor, Decision, Memberships, ProductRef, Resource, TeamMember } from '../../bridge/src/policy/index.js';

// ---------------------------------------------------------------- helpers

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const k of Object.keys(o)) deepFreeze((o as Record<string, unknown>)[k]);
  }
  return o;
}

/** Rank from the data: ROLES is highest first. */
function atLeast(role: Role, min: Role): boolean {
  return ROLES.indexOf(role) <= ROLES.indexOf(min);
}

function allows(d: Decision, role: string, what: string): void {
  assert.equal(d.allow, true, what + ': expected allow, got ' + JSON.stringify(d));
  if (d.allow) assert.equal(d.role, role, what + ': role');
  assert.ok(typeof d.reason === 'string' && d.reason.length > 0, what + ': reason');
}

function refuses(d: Decision, status: 401 | 403 | 404, what: string): void {
  assert.equal(d.allow, false, what + ': expected ' + status + ', got ' + JSON.stringify(d));
  if (!d.allow) assert.equal(d.status, status, what + ': status (' + d.reason + ')');
  assert.ok(typeof d.reason === 'string' && d.reason.length > 0, what + ': reason');
}

const PRODUCT_ENTRIES = PRODUCT_ACTIONS;
const ORG_ENTRIES = ORG_ACTIONS;
const ALL_ACTIONS: Action[] = [...PRODUCT_ACTIONS.map((a) => a.action), ...ORG_ACTIONS.map((a) => a.action)];
const ORG_ACTION_IDS: OrgAction[] = ORG_ACTIONS.map((a) => a.action);
const PRODUCT_ACTION_IDS: ProductAction[] = PRODUCT_ACTIONS.map((a) => a.action);
const OWNER_ONLY = PRODUCT_ACTIONS.filter((a) => a.min === 'owner').map((a) => a.action);

// ---------------------------------------------------------------- fixtures

const ME = 'u-me';

function product(productId: string, ownerUserId: string | null, orgId: string | null, orgOwnerUserId: string | null): ProductRef {
  return deepFreeze({ productId, ownerUserId, orgId, orgOwnerUserId });
}

const P_PERSONAL = product('p-personal', ME, null, null); // my own product
const P_ORG = product('p-org', null, 'o1', 'u-boss'); // a product of org o1
const P_SHARED = product('p-shared', 'u-other', null, null); // someone's personal product, me on its team
const P_ORG2 = product('p-org2', null, 'o2', 'u-boss2'); // a product of org o2, me on its team only
const P_FOREIGN = product('p-foreign', 'u-stranger', null, null);
const P_FOREIGN_ORG = product('p-foreign-org', null, 'o-foreign', 'u-stranger');
const P_ORG_SIBLING = product('p-org-sibling', null, 'o1', 'u-boss'); // another product of o1

function onProduct(p: ProductRef): Resource {
  return deepFreeze({ kind: 'product', product: p });
}
function onDevice(p: ProductRef, deviceId = 'd-' + p.productId, customerId: string | null = null): Resource {
  return deepFreeze({ kind: 'device', deviceId, product: p, customerId });
}
function onOrg(orgId: string, ownerUserId: string): Resource {
  return deepFreeze({ kind: 'org', orgId, ownerUserId });
}

function user(memberships: Memberships, userId = ME): Actor {
  return deepFreeze({ kind: 'user', userId, memberships });
}
const NO_MEMBERSHIPS: Memberships = deepFreeze({ orgs: {}, products: {} });

/** Both the product and one of its devices: every product action is asked on both. */
function productAndDevice(p: ProductRef): Resource[] {
  return [onProduct(p), onDevice(p)];
}

function expectRole(d: Decision, role: Role, min: Role, what: string): void {
  if (atLeast(role, min)) allows(d, role, what);
  else refuses(d, 403, what);
}

// ---------------------------------------------------------------- users on products

describe('policy: users on products, every role × every product action', () => {
  describe('(a) own personal product → owner', () => {
    const actor = user(NO_MEMBERSHIPS);
    for (const { action, min } of PRODUCT_ENTRIES) {
      it(action, () => {
        for (const r of productAndDevice(P_PERSONAL)) expectRole(decide(actor, action, r), 'owner', min, action + ' on ' + r.kind);
      });
    }
  });

  describe('(b) org product via org role', () => {
    for (const orgRole of ROLES) {
      const actor = user(deepFreeze({ orgs: { o1: orgRole }, products: {} }));
      const role = ORG_ROLE_CASCADE[orgRole];
      for (const { action, min } of PRODUCT_ENTRIES) {
        it('org ' + orgRole + ' → ' + role + ': ' + action, () => {
          for (const r of productAndDevice(P_ORG)) expectRole(decide(actor, action, r), role, min, action + ' on ' + r.kind);
          for (const r of productAndDevice(P_ORG_SIBLING)) expectRole(decide(actor, action, r), role, min, action + ' on sibling ' + r.kind);
        });
      }
    }
    // The org's Owner, named by the product (orgOwnerUserId) with no membership row at all.
    const boss = user(NO_MEMBERSHIPS, 'u-boss');
    for (const { action, min } of PRODUCT_ENTRIES) {
      it('org owner by orgOwnerUserId → owner: ' + action, () => {
        for (const r of productAndDevice(P_ORG)) expectRole(decide(boss, action, r), 'owner', min, action + ' on ' + r.kind);
      });
    }
  });

  describe('(c) product via product-team role', () => {
    for (const role of ROLES) {
      const actor = user(deepFreeze({ orgs: {}, products: { 'p-shared': role, 'p-org2': role } }));
      for (const { action, min } of PRODUCT_ENTRIES) {
        it(role + ': ' + action, () => {
          for (const p of [P_SHARED, P_ORG2]) {
            for (const r of productAndDevice(p)) expectRole(decide(actor, action, r), role, min, action + ' on ' + r.kind + ' of ' + p.productId);
          }
        });
      }
    }
  });

  describe('(d) a foreign product → 404 whatever the role elsewhere', () => {
    for (const role of ROLES) {
      const actor = user(deepFreeze({ orgs: { o1: role }, products: { 'p-shared': role } }));
      for (const { action } of PRODUCT_ENTRIES) {
        it(role + ' elsewhere: ' + action, () => {
          for (const p of [P_FOREIGN, P_FOREIGN_ORG, P_ORG2]) {
            for (const r of productAndDevice(p)) refuses(decide(actor, action, r), 404, action + ' on ' + r.kind + ' of ' + p.productId);
          }
        });
      }
    }
  });

  describe('how the role is found', () => {
    it('writes the audit reason with the role, the resource and where the role comes from', () => {
      const p1 = product('p1', null, 'o1', 'u-boss');
      const d = decide(user(deepFreeze({ orgs: { o1: 'developer' }, products: {} })), 'device.flash', onProduct(p1));
      assert.deepEqual(d, { allow: true, role: 'developer', reason: 'developer on product p1 via org o1 may device.flash' });
      const no = decide(user(deepFreeze({ orgs: { o1: 'viewer' }, products: {} })), 'device.flash', onProduct(p1));
      assert.equal(no.allow, false);
      assert.match(no.reason, /^viewer on product p1 via org o1 may not device\.flash/);
    });

    it('the org role wins over a product-team role, higher or lower (DESIGN order)', () => {
      const lower = user(deepFreeze({ orgs: { o1: 'viewer' }, products: { 'p-org': 'administrator' } }));
      refuses(decide(lower, 'device.flash', onProduct(P_ORG)), 403, 'org viewer, product admin');
      allows(decide(lower, 'device.view', onProduct(P_ORG)), 'viewer', 'org viewer, product admin');
      const higher = user(deepFreeze({ orgs: { o1: 'administrator' }, products: { 'p-org': 'viewer' } }));
      allows(decide(higher, 'settings.edit', onProduct(P_ORG)), 'administrator', 'org admin, product viewer');
      assert.equal(userProductRole(ME, lower.kind === 'user' ? lower.memberships : NO_MEMBERSHIPS, P_ORG), 'viewer');
    });

    it('a membership of another org gives nothing on this org', () => {
      const actor = user(deepFreeze({ orgs: { o2: 'owner' }, products: {} }));
      refuses(decide(actor, 'device.view', onProduct(P_ORG)), 404, 'o2 owner on o1 product');
    });

    it('ownership beats any membership', () => {
      const actor = user(deepFreeze({ orgs: {}, products: { 'p-personal': 'viewer' } }));
      allows(decide(actor, 'billing.manage', onProduct(P_PERSONAL)), 'owner', 'personal owner');
      const boss = user(deepFreeze({ orgs: { o1: 'viewer' }, products: {} }), 'u-boss');
      allows(decide(boss, 'billing.manage', onDevice(P_ORG)), 'owner', 'org owner');
    });

    it('orgOwnerUserId counts only when the product has an org', () => {
      const odd = product('p-odd', null, null, ME);
      refuses(decide(user(NO_MEMBERSHIPS), 'device.view', onProduct(odd)), 404, 'orgOwnerUserId without orgId');
    });

    it('prototype keys and junk roles are no membership', () => {
      const junk = user(deepFreeze({ orgs: { o1: 'superuser' as Role }, products: { 'p-shared': 'root' as Role } }));
      refuses(decide(junk, 'device.view', onProduct(P_ORG)), 404, 'junk org role');
      refuses(decide(junk, 'device.view', onProduct(P_SHARED)), 404, 'junk product role');
      for (const id of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
        const p = product(id, 'u-x', id, 'u-y');
        refuses(decide(user(NO_MEMBERSHIPS), 'device.view', onProduct(p)), 404, id);
        refuses(decide(user(NO_MEMBERSHIPS), 'org.team.view', onOrg(id, 'u-y')), 404, id);
      }
    });

    it('an empty user id never matches an empty owner', () => {
      const p = product('p-empty', '', '', '');
      refuses(decide(user(NO_MEMBERSHIPS, ''), 'device.view', onProduct(p)), 401, 'empty user id');
      assert.equal(userProductRole('', NO_MEMBERSHIPS, p), null);
    });
  });
});

// ---------------------------------------------------------------- users on orgs

describe('policy: users on orgs, every role × every org action', () => {
  const O1 = onOrg('o1', 'u-boss');
  const FOREIGN = onOrg('o-foreign', 'u-stranger');
  for (const role of ROLES) {
    const actor = user(deepFreeze({ orgs: { o1: role }, products: { 'p-foreign': role } }));
    for (const { action, min } of ORG_ENTRIES) {
      it(role + ': ' + action + ' on own org', () => expectRole(decide(actor, action, O1), role, min, action));
      it(role + ': ' + action + ' on a foreign org → 404', () => refuses(decide(actor, action, FOREIGN), 404, action));
    }
  }
  const boss = user(NO_MEMBERSHIPS, 'u-boss');
  for (const { action, min } of ORG_ENTRIES) {
    it('owner by ownerUserId: ' + action, () => expectRole(decide(boss, action, O1), 'owner', min, action));
  }
  it('userOrgRole', () => {
    assert.equal(userOrgRole('u-boss', NO_MEMBERSHIPS, 'o1', 'u-boss'), 'owner');
    assert.equal(userOrgRole(ME, deepFreeze({ orgs: { o1: 'support' }, products: {} }), 'o1', 'u-boss'), 'support');
    assert.equal(userOrgRole(ME, NO_MEMBERSHIPS, 'o1', 'u-boss'), null);
  });
});

// ---------------------------------------------------------------- actions on the wrong kind of resource

describe('policy: an action that does not apply to the resource → 403', () => {
  const owner = user(deepFreeze({ orgs: { o1: 'owner' }, products: {} }), 'u-boss');
  for (const action of PRODUCT_ACTION_IDS) {
    it(action + ' on an org', () => {
      const d = decide(owner, action, onOrg('o1', 'u-boss'));
      refuses(d, 403, action);
      assert.match(d.reason, /does not apply to org o1/);
    });
  }
  for (const action of ORG_ACTION_IDS) {
    it(action + ' on a product and a device', () => {
      for (const r of productAndDevice(P_ORG)) {
        const d = decide(owner, action, r);
        refuses(d, 403, action + ' on ' + r.kind);
        assert.match(d.reason, /does not apply to/);
      }
    });
  }
  it('an action the matrix does not know', () => {
    refuses(decide(owner, 'device.explode' as Action, onProduct(P_ORG)), 403, 'unknown action');
    refuses(decide(owner, '__proto__' as Action, onProduct(P_ORG)), 403, 'prototype key as action');
  });
});

// ---------------------------------------------------------------- anonymous and invalid

describe('policy: anonymous and invalid credentials → 401 for every action', () => {
  const actors: Actor[] = deepFreeze([
    { kind: 'anonymous' },
    { kind: 'invalid', reason: 'expired' },
    { kind: 'invalid', reason: 'revoked' },
    { kind: 'invalid', reason: 'unknown' },
  ] as Actor[]);
  const resources = [onProduct(P_PERSONAL), onDevice(P_ORG), onOrg('o1', 'u-boss'), onProduct(P_FOREIGN)];
  for (const actor of actors) {
    const name = actor.kind === 'invalid' ? 'invalid (' + actor.reason + ')' : actor.kind;
    for (const action of ALL_ACTIONS) {
      it(name + ': ' + action, () => {
        for (const r of resources) refuses(decide(actor, action, r), 401, action + ' on ' + r.kind);
      });
    }
  }
  it('malformed actors are 401 too', () => {
    const bad = [
      null, undefined, {}, { kind: 'root' }, { kind: 'user', userId: '', memberships: NO_MEMBERSHIPS },
      { kind: 'user', userId: ME }, { kind: 'customer', customerId: '', productId: 'p' },
      { kind: 'apiUser', apiUserId: '', scope: { orgId: 'o1' }, scopes: ['device.view'] },
      { kind: 'device', deviceId: '', productId: 'p-org' },
    ];
    for (const a of bad) refuses(decide(a as unknown as Actor, 'device.view', onDevice(P_ORG)), 401, JSON.stringify(a));
  });
});

// ---------------------------------------------------------------- customers

describe('policy: customers', () => {
  const CUSTOMER_ALLOWED: Action[] = ['device.view', 'device.variable', 'device.function', 'device.events'];
  const me = deepFreeze<Actor>({ kind: 'customer', customerId: 'c1', productId: 'p-org' });
  const mine = onDevice(P_ORG, 'd-mine', 'c1');
  const theirs = onDevice(P_ORG, 'd-theirs', 'c2');
  const unclaimed = onDevice(P_ORG, 'd-free', null);
  const otherProduct = onDevice(P_ORG_SIBLING, 'd-elsewhere', 'c1'); // same customer id, another product
  for (const action of PRODUCT_ACTION_IDS) {
    const allowed = CUSTOMER_ALLOWED.indexOf(action) >= 0;
    it(action + (allowed ? ' allowed' : ' → 403') + ' on own device, 404 elsewhere', () => {
      const d = decide(me, action, mine);
      if (allowed) allows(d, 'customer', action);
      else refuses(d, 403, action);
      refuses(decide(me, action, theirs), 404, "another customer's device");
      refuses(decide(me, action, unclaimed), 404, 'unclaimed device');
      refuses(decide(me, action, otherProduct), 404, 'device of another product');
      refuses(decide(me, action, onProduct(P_ORG)), 404, 'own product');
      refuses(decide(me, action, onProduct(P_FOREIGN)), 404, 'foreign product');
    });
  }
  for (const action of ORG_ACTION_IDS) {
    it(action + ' on the org → 404', () => refuses(decide(me, action, onOrg('o1', 'u-boss')), 404, action));
  }
});

// ---------------------------------------------------------------- API users

describe('policy: API users', () => {
  function apiUser(scope: { orgId: string } | { productId: string }, scopes: Action[]): Actor {
    return deepFreeze<Actor>({ kind: 'apiUser', apiUserId: 'a1', scope, scopes });
  }
  const inOrg = [...productAndDevice(P_ORG), ...productAndDevice(P_ORG_SIBLING)];
  const outOfOrg = [...productAndDevice(P_PERSONAL), ...productAndDevice(P_FOREIGN_ORG), ...productAndDevice(P_ORG2)];

  describe('org-scoped: every product action listed / unlisted, in and out of scope', () => {
    for (const { action, min } of PRODUCT_ENTRIES) {
      it(action, () => {
        const listed = apiUser({ orgId: 'o1' }, [action]);
        const unlisted = apiUser({ orgId: 'o1' }, ALL_ACTIONS.filter((a) => a !== action));
        for (const r of inOrg) {
          if (min === 'owner') refuses(decide(listed, action, r), 403, 'owner-only action listed');
          else allows(decide(listed, action, r), 'apiUser', action + ' listed on ' + r.kind);
          refuses(decide(unlisted, action, r), 403, action + ' unlisted on ' + r.kind);
        }
        for (const r of outOfOrg) {
          refuses(decide(listed, action, r), 404, action + ' out of scope on ' + r.kind);
          refuses(decide(unlisted, action, r), 404, action + ' out of scope on ' + r.kind);
        }
      });
    }
    for (const action of ORG_ACTION_IDS) {
      it(action + ' on its org and on another', () => {
        allows(decide(apiUser({ orgId: 'o1' }, [action]), action, onOrg('o1', 'u-boss')), 'apiUser', action);
        refuses(decide(apiUser({ orgId: 'o1' }, PRODUCT_ACTION_IDS), action, onOrg('o1', 'u-boss')), 403, action + ' unlisted');
        refuses(decide(apiUser({ orgId: 'o1' }, [action]), action, onOrg('o2', 'u-boss2')), 404, action + ' other org');
      });
    }
  });

  describe('product-scoped', () => {
    for (const { action, min } of PRODUCT_ENTRIES) {
      it(action, () => {
        const listed = apiUser({ productId: 'p-org' }, [action]);
        const unlisted = apiUser({ productId: 'p-org' }, PRODUCT_ACTION_IDS.filter((a) => a !== action));
        for (const r of productAndDevice(P_ORG)) {
          if (min === 'owner') refuses(decide(listed, action, r), 403, 'owner-only action listed');
          else allows(decide(listed, action, r), 'apiUser', action + ' listed on ' + r.kind);
          refuses(decide(unlisted, action, r), 403, action + ' unlisted on ' + r.kind);
        }
        for (const r of [...productAndDevice(P_ORG_SIBLING), ...productAndDevice(P_FOREIGN)]) {
          refuses(decide(listed, action, r), 404, action + ' on another product');
        }
      });
    }
    it('the org of its product is out of scope', () => {
      for (const action of ORG_ACTION_IDS) {
        refuses(decide(apiUser({ productId: 'p-org' }, ALL_ACTIONS), action, onOrg('o1', 'u-boss')), 404, action);
      }
    });
  });

  it('an Owner-only action is refused even when every scope is listed', () => {
    assert.ok(OWNER_ONLY.length > 0);
    for (const action of OWNER_ONLY) {
      const d = decide(apiUser({ orgId: 'o1' }, ALL_ACTIONS), action, onProduct(P_ORG));
      refuses(d, 403, action);
      assert.match(d.reason, /Owner only/);
    }
  });

  it('malformed scopes give nothing', () => {
    const stringScopes = deepFreeze({ kind: 'apiUser', apiUserId: 'a1', scope: { orgId: 'o1' }, scopes: 'device.view,device.flash' });
    refuses(decide(stringScopes as unknown as Actor, 'device.view', onProduct(P_ORG)), 403, 'scopes as a string');
    for (const scope of [null, 'o1', {}, { orgId: '' }, { productId: '' }]) {
      const a = deepFreeze({ kind: 'apiUser', apiUserId: 'a1', scope, scopes: ['device.view'] });
      refuses(decide(a as unknown as Actor, 'device.view', onProduct(product('p-none', null, '', null))), 404, JSON.stringify(scope));
    }
  });

  it('an org-scoped API user does not reach personal products, whatever their orgId-less shape', () => {
    refuses(decide(apiUser({ orgId: 'o1' }, ALL_ACTIONS), 'device.view', onProduct(product('p-x', 'u-x', null, null))), 404, 'personal');
  });
});

// ---------------------------------------------------------------- devices

describe('policy: device actors', () => {
  const DEVICE_ALLOWED: Action[] = ['device.view', 'device.events', 'event.publish'];
  const dev = deepFreeze<Actor>({ kind: 'device', deviceId: 'd1', productId: 'p-org' });
  const itself = onDevice(P_ORG, 'd1', 'c1');
  for (const action of PRODUCT_ACTION_IDS) {
    const allowed = DEVICE_ALLOWED.indexOf(action) >= 0;
    it(action + (allowed ? ' allowed' : ' → 403') + ' on itself, 404 elsewhere', () => {
      const d = decide(dev, action, itself);
      if (allowed) allows(d, 'device', action);
      else refuses(d, 403, action);
      refuses(decide(dev, action, onDevice(P_ORG, 'd2')), 404, 'another device of its product');
      refuses(decide(dev, action, onDevice(P_ORG_SIBLING, 'd1')), 404, 'same id under another product');
      refuses(decide(dev, action, onProduct(P_ORG)), 404, 'its product');
    });
  }
  for (const action of ORG_ACTION_IDS) {
    it(action + ' on an org → 404', () => refuses(decide(dev, action, onOrg('o1', 'u-boss')), 404, action));
  }
});

// ---------------------------------------------------------------- purity

describe('policy: determinism and purity', () => {
  const actors: Actor[] = [
    { kind: 'anonymous' },
    { kind: 'invalid', reason: 'revoked' },
    ...ROLES.map((r): Actor => ({ kind: 'user', userId: ME, memberships: { orgs: { o1: r }, products: { 'p-shared': r } } })),
    { kind: 'user', userId: 'u-boss', memberships: { orgs: {}, products: {} } },
    { kind: 'customer', customerId: 'c1', productId: 'p-org' },
    { kind: 'apiUser', apiUserId: 'a1', scope: { orgId: 'o1' }, scopes: ['device.view', 'billing.manage', 'org.team.view'] },
    { kind: 'apiUser', apiUserId: 'a2', scope: { productId: 'p-org' }, scopes: ['device.flash'] },
    { kind: 'device', deviceId: 'd1', productId: 'p-org' },
  ];
  const resources: Resource[] = [
    { kind: 'product', product: { ...P_ORG } },
    { kind: 'device', deviceId: 'd1', product: { ...P_ORG }, customerId: 'c1' },
    { kind: 'product', product: { ...P_SHARED } },
    { kind: 'product', product: { ...P_PERSONAL } },
    { kind: 'org', orgId: 'o1', ownerUserId: 'u-boss' },
  ];

  function grid(): Decision[] {
    const out: Decision[] = [];
    for (const a of actors) for (const action of ALL_ACTIONS) for (const r of resources) out.push(decide(a, action, r));
    return out;
  }

  it('does not change its inputs (deeply frozen: a write would throw) and gives the same answers each time', () => {
    const before = JSON.stringify([actors, resources]);
    deepFreeze(actors);
    deepFreeze(resources);
    const first = grid();
    const second = grid();
    assert.deepEqual(second, first);
    assert.equal(JSON.stringify([actors, resources]), before);
  });

  it('reads no clock and no randomness', () => {
    const saved = { now: Date.now, random: Math.random, perf: performance.now };
    const boom = (): never => {
      throw new Error('decide read the clock or randomness');
    };
    Date.now = boom;
    Math.random = boom;
    performance.now = boom;
    try {
      grid();
    } finally {
      Date.now = saved.now;
      Math.random = saved.random;
      performance.now = saved.perf;
    }
  });

  it('returns a fresh Decision each call (callers may keep or change it)', () => {
    const a = decide(actors[2], 'device.view', resources[0]);
    const b = decide(actors[2], 'device.view', resources[0]);
    assert.notEqual(a, b);
    assert.deepEqual(a, b);
  });
});

// ---------------------------------------------------------------- team rules

describe('policy/team', () => {
  const manageMin = PRODUCT_ACTIONS.find((a) => a.action === 'team.manage')!.min;
  const orgManageMin = ORG_ACTIONS.find((a) => a.action === 'org.team.manage')!.min;

  it('an Administrator cannot make anyone Owner, nor invite an Owner', () => {
    for (const target of ROLES) assert.equal(canChangeRole('administrator', target, 'owner'), false, target);
    assert.equal(canInvite('administrator', 'owner'), false);
    assert.equal(canInvite('owner', 'owner'), false, 'the Owner role is never granted, even by the Owner');
  });

  it('a Developer (or below) cannot manage the team', () => {
    for (const actor of ['developer', 'support', 'viewer'] as Role[]) {
      for (const target of ROLES) {
        assert.equal(canRemove(actor, target), false);
        assert.equal(canRemove(actor, target, 'org'), false);
        for (const to of ROLES) {
          assert.equal(canChangeRole(actor, target, to), false);
          assert.equal(canChangeRole(actor, target, to, 'org'), false);
        }
      }
      for (const to of ROLES) assert.equal(canInvite(actor, to), false);
    }
  });

  it('nobody grants above their own role; the Owner role never changes; the rest follows the matrix', () => {
    for (const team of ['product', 'org'] as const) {
      const min = team === 'org' ? orgManageMin : manageMin;
      for (const actor of ROLES) {
        for (const target of ROLES) {
          for (const to of ROLES) {
            const got = canChangeRole(actor, target, to, team);
            if (!atLeast(actor, to)) assert.equal(got, false, actor + ' granting ' + to);
            if (target === 'owner' || to === 'owner') assert.equal(got, false, 'owner ' + target + '→' + to);
            const expected = target !== 'owner' && to !== 'owner' && atLeast(actor, min) && atLeast(actor, target) && atLeast(actor, to);
            assert.equal(got, expected, team + ': ' + actor + ' changes ' + target + ' → ' + to);
          }
        }
      }
    }
  });

  it('the Owner cannot be removed, by anyone', () => {
    for (const actor of ROLES) {
      assert.equal(canRemove(actor, 'owner'), false, actor);
      assert.equal(canRemove(actor, 'owner', 'org'), false, actor);
      assert.equal(canChangeRole(actor, 'owner', 'administrator'), false, actor);
    }
  });

  it('managers remove members up to their own role', () => {
    assert.equal(canRemove('owner', 'administrator'), true);
    assert.equal(canRemove('administrator', 'administrator'), true);
    assert.equal(canRemove('administrator', 'viewer', 'org'), true);
    assert.equal(canChangeRole('administrator', 'viewer', 'administrator'), true);
    assert.equal(canChangeRole('owner', 'administrator', 'viewer'), true);
    assert.equal(canInvite('administrator', 'developer', 'org'), true);
  });

  it('inviting to an org removes the product memberships on its products, and only those', () => {
    const m: Memberships = deepFreeze({ orgs: {}, products: { p1: 'developer', p2: 'viewer', p3: 'administrator' } });
    assert.deepEqual(inviteToOrg(m, 'o1', deepFreeze(['p1', 'p2', 'p9', 'p1', '__proto__', 'constructor'])), [
      { productId: 'p1', role: 'developer' },
      { productId: 'p2', role: 'viewer' },
    ]);
    assert.deepEqual(inviteToOrg(m, 'o1', []), []);
    assert.deepEqual(inviteToOrg(NO_MEMBERSHIPS, 'o1', ['p1']), []);
  });

  describe('productTeamView', () => {
    const team = (rows: [string, Role][]): TeamMember[] => deepFreeze(rows.map(([userId, role]) => ({ userId, role })));

    it('lists its own team, then the members who inherit from the org with their cascaded role', () => {
      const view = productTeamView(
        team([['u-contractor', 'developer'], ['u-helper', 'support']]),
        team([['u-boss', 'owner'], ['u-admin', 'administrator'], ['u-viewer', 'viewer']]),
        P_ORG,
      );
      assert.deepEqual(view, [
        { userId: 'u-contractor', role: 'developer', inherited: false },
        { userId: 'u-helper', role: 'support', inherited: false },
        { userId: 'u-boss', role: ORG_ROLE_CASCADE.owner, inherited: true },
        { userId: 'u-admin', role: ORG_ROLE_CASCADE.administrator, inherited: true },
        { userId: 'u-viewer', role: ORG_ROLE_CASCADE.viewer, inherited: true },
      ]);
    });

    it('matches decide(): the org Owner shows even when missing from the org team, and the org role wins over a stale product membership', () => {
      const productTeam = team([['u-both', 'administrator'], ['u-own', 'viewer'], ['u-own', 'developer']]);
      const orgTeam = team([['u-both', 'support']]);
      const view = productTeamView(productTeam, orgTeam, P_ORG);
      assert.deepEqual(view, [
        { userId: 'u-own', role: 'viewer', inherited: false },
        { userId: 'u-boss', role: 'owner', inherited: true },
        { userId: 'u-both', role: 'support', inherited: true },
      ]);
      for (const entry of view) {
        const memberships: Memberships = {
          orgs: Object.fromEntries(orgTeam.filter((m) => m.userId === entry.userId).map((m) => [P_ORG.orgId!, m.role])),
          products: Object.fromEntries(productTeam.filter((m) => m.userId === entry.userId).slice(0, 1).map((m) => [P_ORG.productId, m.role])),
        };
        assert.equal(userProductRole(entry.userId, memberships, P_ORG), entry.role, entry.userId);
      }
    });

    it('a personal product: its Owner first, the org team ignored', () => {
      const view = productTeamView(team([['u-dev', 'developer']]), team([['u-admin', 'administrator']]), P_PERSONAL);
      assert.deepEqual(view, [
        { userId: ME, role: 'owner', inherited: false },
        { userId: 'u-dev', role: 'developer', inherited: false },
      ]);
    });

    it('skips rows with no user id or an unknown role', () => {
      const view = productTeamView(
        deepFreeze([{ userId: '', role: 'viewer' }, { userId: 'u-x', role: 'god' as Role }, { userId: 'u-ok', role: 'viewer' }]),
        [],
        P_SHARED,
      );
      assert.deepEqual(view, [
        { userId: 'u-other', role: 'owner', inherited: false },
        { userId: 'u-ok', role: 'viewer', inherited: false },
      ]);
    });
  });
});
