/** PKCE (RFC 7636), S256 only: plain would let a stolen code be redeemed with the challenge itself. */
import { createHash } from 'node:crypto';

/** 43..128 characters of the unreserved set (RFC 7636 §4.1). */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
/** BASE64URL(SHA-256(verifier)) without padding: 43 characters. */
const CHALLENGE = /^[A-Za-z0-9\-_]{43}$/;

export function challengeProblem(challenge: unknown, method: unknown): string | null {
  if (challenge === undefined || challenge === null || challenge === '') return 'code_challenge is required (PKCE)';
  if (method !== 'S256') return 'code_challenge_method must be S256';
  if (typeof challenge !== 'string' || !CHALLENGE.test(challenge)) return 'code_challenge must be 43 characters of base64url (S256)';
  return null;
}

/** Whether `verifier` is the one the challenge was made from. */
export function verifierMatches(verifier: unknown, challenge: string): boolean {
  if (typeof verifier !== 'string' || !VERIFIER.test(verifier)) return false;
  return createHash('sha256').update(verifier).digest('base64url') === challenge;
}
