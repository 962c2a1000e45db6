/**
 * Device claim codes (Particle's POST /v1/device_claims): a customer or a user
 * asks for a code, the device is given it during setup and presents it once
 * connected (CLAIM_CODE_EVENT), and the device becomes theirs. What a
 * presented code may do is decided here, without I/O.
 */
import { randomWord } from '../store/secrets.js';
import type { ClaimCode } from '../store/store.js';

/** How long a claim code may wait for its device: the setup of one device, with room to spare. */
export const CLAIM_CODE_TTL_SECONDS = 24 * 3600;

/** 32 characters of base64url (24 random bytes): within Device OS' 63. */
export function newClaimCode(): string {
  return randomWord(24);
}

export type ClaimVerdict =
  | { ok: true }
  /** This device spent the code already (it presents it again after a reconnect): nothing to do. */
  | { ok: false; already: true }
  | { ok: false; already: false; reason: string };

/** Who holds a device now: a customer, or the user who claimed it (never both). */
export interface DeviceHolders {
  customerId: string | null;
  ownerUserId: string | null;
}

/**
 * A code presented by a device of `device.productId`, held by `device`'s
 * customer or user (if any). `userMayAdd`: for a user's code, whether the
 * policy lets that user add devices to the product. A device has one
 * claimer at most: a code never takes it from someone else, of either kind.
 */
export function claimVerdict(code: ClaimCode | null, deviceId: string, device: { productId: number } & DeviceHolders, now: Date, userMayAdd: boolean): ClaimVerdict {
  const no = (reason: string): ClaimVerdict => ({ ok: false, already: false, reason });
  if (!code) return no('unknown claim code');
  if (code.deviceId === deviceId) return { ok: false, already: true };
  if (code.deviceId !== null) return no('the claim code was spent by another device');
  if (code.expiresAt.getTime() <= now.getTime()) return no('the claim code expired');
  if (code.productId !== null && code.productId !== device.productId) return no('the claim code is for another product');
  if (code.claimant.kind === 'customer') {
    if (device.customerId !== null && device.customerId !== code.claimant.id) return no('the device belongs to another customer');
    if (device.ownerUserId !== null) return no('the device is claimed by a user');
    return { ok: true };
  }
  if (device.customerId !== null) return no('the device belongs to a customer');
  if (device.ownerUserId !== null && device.ownerUserId !== code.claimant.id) return no('the device is claimed by another user');
  return userMayAdd ? { ok: true } : no('the user may not add devices to this product');
}

/**
 * A customer claiming a device by its id (POST /v1/devices): a device of the
 * customer's product that no one else (customer or user) holds. Anything
 * else is a 404, so a customer cannot learn which ids exist elsewhere.
 */
export function mayClaimById(customer: { customerId: string; productId: string }, device: ({ productId: string } & DeviceHolders) | null): boolean {
  return device !== null && device.productId === customer.productId && device.ownerUserId === null && (device.customerId === null || device.customerId === customer.customerId);
}
