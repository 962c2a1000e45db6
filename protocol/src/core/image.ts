/**
 * The firmware image format, shared by the bridge (checks uploads against
 * their manifest), the agent (checks what it received before marking it)
 * and the hosts' bootloader (finds the program in a slot):
 *
 *   0  'FLIM'                magic
 *   4  1                     format
 *   5  0 0 0                 reserved
 *   8  product    uint32 BE
 *  12  version    uint32 BE
 *  16  bodySize   uint32 BE  bytes of the body that follows the header
 *  20  bodySha256 32 bytes   SHA-256 of the body
 *  52  body                  the program: one JS bundle (agent + application), UTF-8
 *
 * An OTA job carries the whole image; its otaBegin.sha256 covers header and body.
 */
import { fail } from './errors.js';

export const IMAGE_HEADER_SIZE = 52;
const MAGIC = [0x46, 0x4c, 0x49, 0x4d];
const FORMAT = 1;

export interface ImageHeader {
  product: number;
  version: number;
  bodySize: number;
  bodySha256: Uint8Array;
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) >>> 0) + (b[at + 1] << 16) + (b[at + 2] << 8) + b[at + 3];
}

function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 24) & 255;
  b[at + 1] = (v >>> 16) & 255;
  b[at + 2] = (v >>> 8) & 255;
  b[at + 3] = v & 255;
}

export function encodeImageHeader(h: ImageHeader): Uint8Array {
  const b = new Uint8Array(IMAGE_HEADER_SIZE);
  for (let i = 0; i < 4; i++) b[i] = MAGIC[i];
  b[4] = FORMAT;
  putU32(b, 8, h.product);
  putU32(b, 12, h.version);
  putU32(b, 16, h.bodySize);
  b.set(h.bodySha256, 20);
  return b;
}

/** Whether the bytes start like an image (its magic), whatever else they hold. */
export function hasImageMagic(b: Uint8Array): boolean {
  if (b.length < 4) return false;
  for (let i = 0; i < 4; i++) if (b[i] !== MAGIC[i]) return false;
  return true;
}

/** Reads a header; throws a ProtocolError (code `value`) for anything that is not one. */
export function parseImageHeader(b: Uint8Array): ImageHeader {
  if (b.length < IMAGE_HEADER_SIZE) return fail('value', 'image: shorter than its ' + IMAGE_HEADER_SIZE + '-byte header');
  if (!hasImageMagic(b)) return fail('value', 'image: no FLIM magic; not a Flotilla firmware image');
  if (b[4] !== FORMAT) return fail('value', 'image: unknown format ' + b[4]);
  const sha = new Uint8Array(32);
  sha.set(b.subarray(20, 52));
  return { product: u32(b, 8), version: u32(b, 12), bodySize: u32(b, 16), bodySha256: sha };
}
