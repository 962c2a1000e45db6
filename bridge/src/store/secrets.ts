/**
 * What the store keeps instead of secrets: scrypt hashes for passwords and
 * device secrets, SHA-256 for tokens, and the random values it hands out.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import type { ScryptOptions } from 'node:crypto';

/** scrypt's cost: N (CPU/memory, a power of two), r (block size), p (parallelism). */
export interface ScryptCost {
  N: number;
  r: number;
  p: number;
}

/**
 * Passwords are chosen by people, so their hash has to be slow: OWASP's
 * scrypt settings "N=2^15 (32 MiB), r=8, p=3" (about 0.4 s on a small 2-core
 * machine; a login happens once per token lifetime).
 */
export const PASSWORD_COST: ScryptCost = { N: 2 ** 15, r: 8, p: 3 };

/**
 * Device secrets are generated (≥ 128 random bits), so the work factor is not
 * what protects them; a cheap scrypt (about 4 ms, 1 MiB) keeps a reconnect
 * storm of 10,000 devices affordable. Each hash records its own cost, so both
 * can be raised later without invalidating stored hashes.
 */
export const DEVICE_SECRET_COST: ScryptCost = { N: 2 ** 10, r: 8, p: 1 };

const KEY_LENGTH = 32;
const SALT_LENGTH = 16;

function scrypt(secret: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  const options: ScryptOptions = { N: cost.N, r: cost.r, p: cost.p, maxmem: 256 * cost.N * cost.r + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scryptCb(secret.normalize('NFC'), salt, KEY_LENGTH, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** `scrypt$N$r$p$<salt base64url>$<key base64url>`: self-describing, so the cost can change. */
export async function hashSecret(secret: string, cost: ScryptCost): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await scrypt(secret, salt, cost);
  return ['scrypt', cost.N, cost.r, cost.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/**
 * Constant-time comparison of `secret` with a stored hash. A null hash (unknown
 * user or device) is compared against a dummy of the same cost, so the answer
 * takes as long whether the name exists or not.
 */
export async function verifySecret(secret: string, stored: string | null, dummyCost: ScryptCost): Promise<boolean> {
  const parsed = stored === null ? null : parseHash(stored);
  const cost = parsed ? parsed.cost : dummyCost;
  const salt = parsed ? parsed.salt : Buffer.alloc(SALT_LENGTH);
  const expected = parsed ? parsed.key : Buffer.alloc(KEY_LENGTH);
  const key = await scrypt(secret, salt, cost);
  return timingSafeEqual(key, expected) && parsed !== null;
}

function parseHash(stored: string): { cost: ScryptCost; salt: Buffer; key: Buffer } | null {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  const key = Buffer.from(parts[5], 'base64url');
  if (!Number.isInteger(N) || !Number.isInteger(r) || !Number.isInteger(p) || key.length !== KEY_LENGTH) return null;
  return { cost: { N, r, p }, salt: Buffer.from(parts[4], 'base64url'), key };
}

/** SHA-256, lowercase hex: what the store keeps of a token. */
export function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

/**
 * `bytes` random bytes as base64url, never starting with '-': these values are
 * pasted after a flag (`--token T`), and one in 64 read as an option there
 * (flotilla-simulate, parseArgs: "argument is ambiguous"). Drawing again costs
 * less than 0.03 bits.
 */
export function randomWord(bytes: number): string {
  for (;;) {
    const w = randomBytes(bytes).toString('base64url');
    if (w[0] !== '-') return w;
  }
}

/** A bearer token: 32 random bytes (256 bits), base64url. */
export function newToken(): string {
  return randomWord(32);
}

/** A row id: 12 random bytes as 24 lowercase hex characters, the shape of Particle's ids. */
export function newId(): string {
  return randomBytes(12).toString('hex');
}

/** A device secret the bridge makes for an imported device: 24 random bytes, base64url. */
export function newDeviceSecret(): string {
  return randomWord(24);
}
