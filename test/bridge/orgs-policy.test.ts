/**
 * The organization rules as pure decisions, case by case: decide() on an
 * org's products as a whole (its usage and billing account), handing an org
 * over, who consents to a transfer, what a transfer request needs, and what
 * the move does to the product's team. No I/O: tables in, answers out.
 */
import assert from 'node:assert/strict';
import { ORG_ACTIONS, PRODUCT_ACTIONS, ROLES, roleAllows, type Action, type Role } from '@flotilla/protocol';
import { canConsent, canHandOver, canTakeOver, decide, invitationStands, mayGrantScope, scopeApplies, transferCascade, transferProblem, type Actor, type TeamResource, type Resource } from '../../bridge/src/policy/index.js';

const ORG = 'o1';
const BOSS = 'u-boss';
const orgProducts: Resource = { kind: 'orgProducts', orgId: ORG, ownerUserId: BOSS };
const user = (userId: string, orgRole?: Role, productRoles: Record<string, Role> = {}): Actor => ({
  kind: 'user', userId, memberships: { orgs: orgRole ? { [ORG]: orgRole } : {}, products: productRoles },
});

describe('policy: an org\'s products as a whole (usage, billing account)', () => {
  for (const role of ROLES.filter((r) => r !== 'owner')) {
    it(`a ${role} of the org: every product action as on one of its products`, () => {
      for (const { action } of PRODUCT_ACTIONS) {
        const d = decide(user('u1', role), action, orgProducts);
        assert.equal(d.allow, roleAllows(role, action), action);
        if (!d.allow) assert.equal(d.status, 403, action);
      }
    });
  }
  it('its Owner: billing.manage too', () => {
    const d = decide(user(BOSS), 'billing.manage', orgProducts);
    assert.deepEqual([d.allow, d.allow && d.role], [true, 'owner']);
  });
  it('no role on the org → 404, even with a role on one of its products', () => {
    for (const a of [user('u1'), user('u1', undefined, { '7': 'administrator' })]) {
      const d = decide(a, 'billing.view', orgProducts);
      assert.deepEqual([d.allow, !d.allow && d.status], [false, 404]);
    }
  });
  it('org actions do not apply (403); customers, devices and other API users have none (404)', () => {
    for (const { action } of ORG_ACTIONS) assert.equal(decide(user(BOSS), action as Action, orgProducts).allow, false);
    const none: Actor[] = [
      { kind: 'customer', customerId: 'c1', productId: '7' },
      { kind: 'device', deviceId: 'd'.repeat(24), productId: '7' },
      { kind: 'apiUser', apiUserId: 'p1', scope: { productId: '7' }, scopes: ['billing.view'] },
      { kind: 'apiUser', apiUserId: 'o2', scope: { orgId: 'o2' }, scopes: ['billing.view'] },
    ];
    for (const a of none) assert.deepEqual(((d) => [d.allow, !d.allow && d.status])(decide(a, 'billing.view', orgProducts)), [false, 404], a.kind);
  });
  it('an API user of the org: its scopes, and never billing.manage (one person\'s)', () => {
    const api: Actor = { kind: 'apiUser', apiUserId: 'a1', scope: { orgId: ORG }, scopes: ['billing.view', 'billing.manage'] };
    assert.equal(decide(api, 'billing.view', orgProducts).allow, true);
    assert.equal(decide(api, 'billing.manage', orgProducts).allow, false);
    assert.equal(decide(api, 'device.view', orgProducts).allow, false, 'not in its scopes');
  });
});

describe('policy: handing an org over and consenting to a transfer', () => {
  it('only the Owner hands over, to someone on the team who is not the Owner', () => {
    assert.deepEqual(ROLES.map((r) => canHandOver(r)), [true, false, false, false, false]);
    assert.equal(canHandOver(null), false);
    assert.deepEqual(ROLES.map((r) => canTakeOver(r)), [false, true, true, true, true]);
    assert.equal(canTakeOver(null), false);
  });
  it('Administrators and the Owner consent', () => {
    assert.deepEqual(ROLES.map((r) => canConsent(r)), [true, true, false, false, false]);
    assert.equal(canConsent(null), false);
  });
  it('a request needs a personal product and an org the Owner is on', () => {
    const personal = { productId: '7', ownerUserId: 'u1', orgId: null, orgOwnerUserId: null };
    assert.equal(transferProblem(personal, 'viewer'), null);
    assert.deepEqual(transferProblem(personal, null), { status: 404, reason: 'Organization not found' });
    assert.equal(transferProblem({ ...personal, ownerUserId: null, orgId: 'o2', orgOwnerUserId: 'x' }, 'owner')!.status, 409);
  });
});

describe('policy: what a transfer does to the product\'s team', () => {
  const orgTeam = [{ userId: BOSS, role: 'owner' as Role }, { userId: 'dave', role: 'administrator' as Role }, { userId: 'alice', role: 'developer' as Role }];
  it('keeps personal collaborators, drops those the org team governs, and the former Owner', () => {
    const productTeam = [
      { userId: 'alice', role: 'owner' as Role }, { userId: 'carol', role: 'viewer' as Role }, { userId: 'dave', role: 'support' as Role },
      { userId: 'erin', role: 'developer' as Role }, { userId: BOSS, role: 'viewer' as Role },
    ];
    assert.deepEqual(transferCascade(productTeam, orgTeam, 'alice'), {
      kept: [{ userId: 'carol', role: 'viewer' }, { userId: 'erin', role: 'developer' }],
      superseded: [{ userId: 'dave', role: 'support' }, { userId: BOSS, role: 'viewer' }],
    });
  });
  it('skips rows with no id, a bad role, or a second row of the same person; changes no input', () => {
    const productTeam = Object.freeze([
      Object.freeze({ userId: '', role: 'viewer' as Role }), Object.freeze({ userId: 'x', role: 'emperor' as Role }),
      Object.freeze({ userId: 'carol', role: 'viewer' as Role }), Object.freeze({ userId: 'carol', role: 'developer' as Role }),
    ]);
    assert.deepEqual(transferCascade(productTeam, Object.freeze(orgTeam), 'alice'), { kept: [{ userId: 'carol', role: 'viewer' }], superseded: [] });
  });
});

describe('policy: the scopes an API user may be given (nobody grants above their own)', () => {
  const orgTeam: TeamResource = { kind: 'org', orgId: ORG, ownerUserId: BOSS };
  const product = { productId: '7', orgId: ORG, ownerUserId: null } as never;
  const productTeam: TeamResource = { kind: 'product', product };
  it('a member: exactly the actions their role holds there (the org\'s role cascaded to product scopes)', () => {
    for (const role of ROLES.filter((r) => r !== 'owner')) {
      for (const { action } of ORG_ACTIONS) assert.equal(mayGrantScope(user('u1', role), action, orgTeam), roleAllows(role, action), role + ' ' + action);
      for (const { action } of PRODUCT_ACTIONS) assert.equal(mayGrantScope(user('u1', role), action, orgTeam), decide(user('u1', role), action, orgProducts).allow, role + ' ' + action);
    }
  });
  it('an API user: only its own scopes, on its own team', () => {
    const maker: Actor = { kind: 'apiUser', apiUserId: 'a1', scope: { orgId: ORG }, scopes: ['org.apiUsers', 'device.view'] };
    assert.deepEqual((['org.apiUsers', 'device.view', 'org.team.manage', 'device.remove'] as Action[]).map((s) => mayGrantScope(maker, s, orgTeam)), [true, true, false, false]);
    const elsewhere: Actor = { kind: 'apiUser', apiUserId: 'a2', scope: { orgId: 'o2' }, scopes: ['org.apiUsers'] };
    assert.equal(mayGrantScope(elsewhere, 'org.apiUsers', orgTeam), false);
  });
  it('org actions name no product: they do not apply to a product\'s API user', () => {
    assert.equal(scopeApplies('org.team.manage', productTeam), false);
    assert.equal(scopeApplies('org.team.manage', orgTeam), true);
    assert.equal(scopeApplies('device.view', productTeam), true);
  });
});

describe('policy: an invitation stands while its sender may still make it', () => {
  const orgTeam: TeamResource = { kind: 'org', orgId: ORG, ownerUserId: BOSS };
  it('an Administrator\'s stands up to their role; demoted, removed or gone, it lapses; the Owner\'s always stands', () => {
    assert.equal(invitationStands(user('u1', 'administrator'), 'administrator', orgTeam), true);
    assert.equal(invitationStands(user('u1', 'support'), 'viewer', orgTeam), false, 'demoted to Support: may invite no one');
    assert.equal(invitationStands(user('u1'), 'viewer', orgTeam), false, 'removed');
    assert.equal(invitationStands(null, 'viewer', orgTeam), false, 'account gone');
    assert.equal(invitationStands(user(BOSS), 'administrator', orgTeam), true);
  });
});
