/**
 * The customer sign-in decisions, case by case, without I/O: which steps a
 * product's mode allows (customers/modes.ts), PKCE S256 (RFC 7636's own
 * example vector), and what a presented claim code may do (claims.ts).
 */
import assert from 'node:assert/strict';
import { claimVerdict, mayClaimById, newClaimCode } from '../../bridge/src/customers/claims.js';
import { customerAuthMode, stepRefusal, type CustomerAuthMode, type SigninStep } from '../../bridge/src/customers/modes.js';
import { challengeProblem, verifierMatches } from '../../bridge/src/customers/pkce.js';
import type { ClaimCode } from '../../bridge/src/store/store.js';
import { LIMITS } from '@flotilla/protocol';

describe('Customer sign-in decisions', () => {
  it('allows each mode its own steps and refuses the others', () => {
    const allowed: Record<CustomerAuthMode, SigninStep[]> = {
      simple: ['signup_password', 'password_grant'],
      two_legged: ['signup_no_password', 'customer_token'],
      oauth: ['authorization_code'],
    };
    const steps: SigninStep[] = ['signup_password', 'signup_no_password', 'password_grant', 'customer_token', 'authorization_code'];
    for (const mode of Object.keys(allowed) as CustomerAuthMode[])
      for (const step of steps) assert.equal(stepRefusal(mode, step) === null, allowed[mode].includes(step), mode + ' / ' + step);
    assert.equal(stepRefusal('oauth', 'password_grant'), 'This product signs its customers in with OAuth 2.0 (authorization code); the password grant is not allowed');
  });

  it('reads the mode from the settings: unset or unknown is simple', () => {
    assert.equal(customerAuthMode({}), 'simple');
    assert.equal(customerAuthMode({ customer_auth: 'two_legged' }), 'two_legged');
    assert.equal(customerAuthMode({ customer_auth: 'bogus' }), 'simple');
  });

  it('checks PKCE S256 with RFC 7636 appendix B, and refuses plain, short or missing challenges', () => {
    // RFC 7636 Appendix B: verifier → challenge.
    const verifier = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
    const challenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
    assert.equal(challengeProblem(challenge, 'S256'), null);
    assert.equal(verifierMatches(verifier, challenge), true);
    assert.equal(verifierMatches(verifier.slice(0, -1) + 'j', challenge), false);
    assert.equal(verifierMatches('short', challenge), false, 'under 43 characters');
    assert.equal(verifierMatches(undefined, challenge), false);
    assert.equal(challengeProblem(challenge, 'plain'), 'code_challenge_method must be S256');
    assert.equal(challengeProblem('', 'S256'), 'code_challenge is required (PKCE)');
    assert.equal(challengeProblem('abc', 'S256'), 'code_challenge must be 43 characters of base64url (S256)');
  });

  describe('claim codes', () => {
    const now = new Date(1_800_000_000_000);
    const code = (over: Partial<ClaimCode> = {}): ClaimCode => ({
      productId: 7, claimant: { kind: 'customer', id: 'c1' }, createdAt: now, expiresAt: new Date(now.getTime() + 1000), deviceId: null, ...over,
    });
    const dev = { productId: 7, customerId: null, ownerUserId: null };
    type Dev = Parameters<typeof claimVerdict>[2];
    const held = (over: Partial<Dev>): Dev => ({ ...dev, ...over });
    const userCode = code({ claimant: { kind: 'user', id: 'u1' } });
    const cases: [string, ClaimCode | null, Dev, boolean, ReturnType<typeof claimVerdict>][] = [
      ['a fresh code, an unclaimed device', code(), dev, false, { ok: true }],
      ['its own customer already holds it', code(), held({ customerId: 'c1' }), false, { ok: true }],
      ['unknown', null, dev, false, { ok: false, already: false, reason: 'unknown claim code' }],
      ['spent by this device (presented again)', code({ deviceId: 'd1' }), dev, false, { ok: false, already: true }],
      ['spent by another device', code({ deviceId: 'd2' }), dev, false, { ok: false, already: false, reason: 'the claim code was spent by another device' }],
      ['expired', code({ expiresAt: now }), dev, false, { ok: false, already: false, reason: 'the claim code expired' }],
      ['another product', code(), held({ productId: 8 }), false, { ok: false, already: false, reason: 'the claim code is for another product' }],
      ['another customer holds the device', code(), held({ customerId: 'c2' }), false, { ok: false, already: false, reason: 'the device belongs to another customer' }],
      // One claimer at most: a code never takes a device from someone of the other kind, nor from another user.
      ["a customer's code, a user holds the device", code(), held({ ownerUserId: 'u1' }), false, { ok: false, already: false, reason: 'the device is claimed by a user' }],
      ["a user's code, a customer holds the device", userCode, held({ customerId: 'c1' }), true, { ok: false, already: false, reason: 'the device belongs to a customer' }],
      ["a user's code, another user holds the device", userCode, held({ ownerUserId: 'u2' }), true, { ok: false, already: false, reason: 'the device is claimed by another user' }],
      ["a user's code, that user holds the device already", userCode, held({ ownerUserId: 'u1' }), true, { ok: true }],
      ["a user's code, allowed to add", code({ claimant: { kind: 'user', id: 'u1' } }), dev, true, { ok: true }],
      ["a user's code, not allowed", code({ claimant: { kind: 'user', id: 'u1' } }), dev, false, { ok: false, already: false, reason: 'the user may not add devices to this product' }],
      // Without a product: any product, as the user may add devices to the device's own.
      ["a user's code for no product, allowed on the device's", code({ productId: null, claimant: { kind: 'user', id: 'u1' } }), held({ productId: 8 }), true, { ok: true }],
      ["a user's code for no product, not allowed on the device's", code({ productId: null, claimant: { kind: 'user', id: 'u1' } }), held({ productId: 8 }), false,
        { ok: false, already: false, reason: 'the user may not add devices to this product' }],
    ];
    for (const [what, c, d, userMayAdd, want] of cases) it(what, () => assert.deepEqual(claimVerdict(c, 'd1', d, now, userMayAdd), want));

    it('makes codes a device can hold, all different', () => {
      const codes = new Set(Array.from({ length: 100 }, newClaimCode));
      assert.equal(codes.size, 100);
      for (const c of codes) assert.ok(/^[A-Za-z0-9_-]{32}$/.test(c) && c.length <= LIMITS.claimCodeMaxBytes, c);
    });

    it('lets a customer claim by id only a device of its product that no one else (customer or user) holds', () => {
      const me = { customerId: 'c1', productId: '7' };
      assert.equal(mayClaimById(me, { productId: '7', customerId: null, ownerUserId: null }), true);
      assert.equal(mayClaimById(me, { productId: '7', customerId: 'c1', ownerUserId: null }), true);
      assert.equal(mayClaimById(me, { productId: '7', customerId: 'c2', ownerUserId: null }), false);
      assert.equal(mayClaimById(me, { productId: '7', customerId: null, ownerUserId: 'u1' }), false);
      assert.equal(mayClaimById(me, { productId: '8', customerId: null, ownerUserId: null }), false);
      assert.equal(mayClaimById(me, null), false);
    });
  });
});
