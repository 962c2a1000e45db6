/**
 * Sends an image to one device over the protocol, as the bridge will: begin,
 * then chunks from the offset the device reports, `window` chunks ahead,
 * until it answers verified or failed. `mangle` lets fault tests corrupt,
 * drop, duplicate or reorder chunks on the way.
 */
import { createHash } from 'node:crypto';
import type { Messages } from '@flotilla/protocol';
import type { TestCloud } from './test-cloud.js';

export interface SendImageOptions {
  job: number;
  product: number;
  version: number;
  chunkSize?: number;
  window?: number;
  /** Sees each chunk before it is sent; returns the chunks to send instead (none, one, several). */
  mangle?: (c: Messages['otaChunk']) => Messages['otaChunk'][];
  /** Overrides the SHA-256 announced in begin. */
  sha256?: Uint8Array;
  timeoutMs?: number;
  /** Stop after this many status messages without finishing (a test that cuts power mid-way). */
  stopAfterStatuses?: number;
}

export async function sendImage(cloud: TestCloud, deviceId: string, image: Uint8Array, o: SendImageOptions): Promise<Messages['otaStatus']> {
  const chunkSize = o.chunkSize ?? 1024;
  const window = o.window ?? 4;
  const sha256 = o.sha256 ?? new Uint8Array(createHash('sha256').update(image).digest());
  cloud.send(deviceId, 'otaBegin', { job: o.job, product: o.product, version: o.version, size: image.length, sha256, chunkSize });
  let sentUpTo = 0;
  let statuses = 0;
  const deadline = Date.now() + (o.timeoutMs ?? 20000);
  for (;;) {
    const s = await cloud.kind(deviceId, 'otaStatus', Math.max(1, deadline - Date.now()), (m) => m.job === o.job);
    statuses++;
    if (s.state !== 'offset') return s;
    if (o.stopAfterStatuses !== undefined && statuses >= o.stopAfterStatuses) return s;
    // Anything the device does not hold is (re)sent; ahead of it, keep `window` chunks in flight.
    if (s.offset < sentUpTo - window * chunkSize || s.offset > sentUpTo) sentUpTo = s.offset;
    if (sentUpTo < s.offset) sentUpTo = s.offset;
    const limit = Math.min(image.length, s.offset + window * chunkSize);
    // After a gap the device repeats its offset once per chunk it refused: resend from it once.
    if (sentUpTo >= limit && s.offset < sentUpTo && statuses % window === 0) sentUpTo = s.offset;
    while (sentUpTo < limit) {
      const data = image.subarray(sentUpTo, Math.min(image.length, sentUpTo + chunkSize));
      const chunk = { job: o.job, offset: sentUpTo, data: new Uint8Array(data) };
      for (const c of o.mangle ? o.mangle(chunk) : [chunk]) cloud.send(deviceId, 'otaChunk', c);
      sentUpTo += data.length;
    }
  }
}
