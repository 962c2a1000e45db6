/**
 * Firmware images on disk, under <dataDir>/firmware/: a product's versions as
 * <product>/<version>.flim, one-off flash images as flash/<random>.flim, and
 * uploads in progress in .incoming/. The database keeps paths relative to the
 * data directory. Images are checked and wrapped by streaming: an upload is
 * never held in memory whole.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { encodeImageHeader, hasImageMagic, IMAGE_HEADER_SIZE, isProtocolError, parseImageHeader, type ImageHeader } from '@flotilla/protocol';
import { OtaError } from './errors.js';

export function firmwareDir(dataDir: string): string {
  return join(dataDir, 'firmware');
}

export function incomingDir(dataDir: string): string {
  return join(firmwareDir(dataDir), '.incoming');
}

/** Relative to the data directory. */
export function versionPath(productId: number, version: number): string {
  return join('firmware', String(productId), version + '.flim');
}

export function flashPath(): string {
  return join('firmware', 'flash', randomBytes(12).toString('hex') + '.flim');
}

/** A checked image, still at `file` (absolute). */
export interface CheckedImage {
  file: string;
  product: number;
  version: number;
  /** Whole image: header and body. */
  size: number;
  /** SHA-256 of the whole image, lowercase hex. */
  sha256: string;
  /** The client sent a bare JS bundle and the bridge wrapped it in a header. */
  wrapped: boolean;
}

export interface UploadedFile {
  path: string;
  size: number;
  sha256: string;
}

async function sha256Of(file: string, start = 0): Promise<string> {
  const h = createHash('sha256');
  for await (const b of createReadStream(file, { start })) h.update(b as Buffer);
  return h.digest('hex');
}

async function readHead(file: string): Promise<Uint8Array> {
  const fh = await open(file, 'r');
  try {
    const b = new Uint8Array(IMAGE_HEADER_SIZE);
    const { bytesRead } = await fh.read(b, 0, IMAGE_HEADER_SIZE, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * Makes an uploaded file an image for `product`: a FLIM image is checked
 * (its header against the product and the version asked for, its body
 * against the header's size and SHA-256); anything else is taken as a JS
 * bundle and wrapped, which needs `version`. OtaError `invalid` says what
 * does not match.
 */
export async function checkImage(upload: UploadedFile, product: number, version: number | null, maxBytes: number): Promise<CheckedImage> {
  if (upload.size === 0) throw new OtaError('invalid', 'The file is empty');
  const head = await readHead(upload.path);
  if (hasImageMagic(head)) {
    let h: ImageHeader;
    try {
      h = parseImageHeader(head);
    } catch (e) {
      throw new OtaError('invalid', isProtocolError(e) ? e.message : String(e));
    }
    if (h.product !== product) throw new OtaError('invalid', `The image is for product ${h.product}, not ${product}`);
    if (version !== null && h.version !== version) throw new OtaError('invalid', `The image is version ${h.version}, not ${version} as the version field says`);
    if (h.version < 1) throw new OtaError('invalid', 'The image has version 0; versions start at 1');
    if (h.bodySize + IMAGE_HEADER_SIZE !== upload.size)
      throw new OtaError('invalid', `The image header says ${h.bodySize + IMAGE_HEADER_SIZE} bytes, the file has ${upload.size}`);
    const body = await sha256Of(upload.path, IMAGE_HEADER_SIZE);
    if (body !== Buffer.from(h.bodySha256).toString('hex')) throw new OtaError('invalid', 'The image body does not match the SHA-256 in its header');
    return { file: upload.path, product, version: h.version, size: upload.size, sha256: upload.sha256, wrapped: false };
  }
  if (version === null) throw new OtaError('invalid', 'The file is not a Flotilla image (no FLIM header); to send a JS bundle, give its version');
  if (upload.size + IMAGE_HEADER_SIZE > maxBytes) throw new OtaError('invalid', `The image would be ${upload.size + IMAGE_HEADER_SIZE} bytes; at most ${maxBytes}`);
  // A bare bundle: its SHA-256 (taken during the upload) is the body's.
  const header = encodeImageHeader({ product, version, bodySize: upload.size, bodySha256: Buffer.from(upload.sha256, 'hex') });
  const file = upload.path + '.flim';
  const out = await open(file, 'w', 0o600);
  const whole = createHash('sha256').update(header);
  try {
    await out.write(header, 0, header.length, 0);
    let at = IMAGE_HEADER_SIZE;
    for await (const b of createReadStream(upload.path)) {
      whole.update(b as Buffer);
      await out.write(b as Buffer, 0, (b as Buffer).length, at);
      at += (b as Buffer).length;
    }
    await out.sync();
  } finally {
    await out.close();
  }
  await rm(upload.path, { force: true });
  return { file, product, version, size: upload.size + IMAGE_HEADER_SIZE, sha256: whole.digest('hex'), wrapped: true };
}

/** Moves a checked image to its place (relative to the data directory). */
export async function keep(dataDir: string, image: CheckedImage, relative: string): Promise<void> {
  const to = join(dataDir, relative);
  await mkdir(dirname(to), { recursive: true });
  await rename(image.file, to);
}

export async function removeImage(dataDir: string, relative: string): Promise<void> {
  await rm(join(dataDir, relative), { force: true });
}

/** Reads pieces of an image from disk for one transfer. */
export class ImageReader {
  private constructor(private readonly fh: Awaited<ReturnType<typeof open>>) {}

  static async open(dataDir: string, relative: string): Promise<ImageReader> {
    return new ImageReader(await open(join(dataDir, relative), 'r'));
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const b = Buffer.allocUnsafe(length);
    const { bytesRead } = await this.fh.read(b, 0, length, offset);
    if (bytesRead !== length) throw new Error(`image file ended at ${offset + bytesRead}, expected ${offset + length}`);
    return b;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}
