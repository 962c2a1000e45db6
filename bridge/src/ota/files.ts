/**
 * Firmware images on disk, under <dataDir>/firmware/: a product's versions as
 * <product>/<version>.flim, one-off flash images as flash/<random>.flim, and
 * uploads in progress in .incoming/. The database keeps paths relative to the
 * data directory. Images are checked and wrapped by streaming: an upload is
 * never held in memory whole.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { encodeImageHeader, hasImageMagic, IMAGE_HEADER_SIZE, isProtocolError, parseImageHeader, type ImageHeader } from '@flotilla/protocol';
import { OtaError } from './errors.js';

export function firmwareDir(dataDir: string): string {
  return join(dataDir, 'firmware');
}

export function incomingDir(dataDir: string): string {
  return join(firmwareDir(dataDir), '.incoming');
}

/**
 * Where an uploaded version is kept, relative to the data directory: a name of its own per
 * upload, so two uploads of one version racing cannot overwrite (or remove) each other's file.
 */
export function versionPath(productId: number, version: number): string {
  return join('firmware', String(productId), version + '-' + randomBytes(6).toString('hex') + '.flim');
}

const FLASH_DIR = join('firmware', 'flash');

/** Where a one-off flash's image is kept: for its job only, removed when the job ends. */
export function flashPath(): string {
  return join(FLASH_DIR, randomBytes(12).toString('hex') + '.flim');
}

export function isFlashPath(relative: string): boolean {
  return relative.startsWith(FLASH_DIR + '/');
}

/** One-off flash images no job in `keep` needs (left by a bridge that stopped before their jobs ended): removed. */
export async function sweepFlashImages(dataDir: string, keep: ReadonlySet<string>): Promise<number> {
  let names: string[];
  try {
    names = await readdir(join(dataDir, FLASH_DIR));
  } catch {
    return 0;
  }
  let n = 0;
  for (const name of names) {
    const relative = join(FLASH_DIR, name);
    if (keep.has(relative)) continue;
    await removeImage(dataDir, relative);
    n++;
  }
  return n;
}

/**
 * Removes what uploads left in .incoming/: at start none is in progress (the bridge holds its data
 * directory alone), and an upload cut by a stop or a kill left its part there for good (up to the
 * image limit each). Answers how many.
 */
export async function sweepIncoming(dataDir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(incomingDir(dataDir));
  } catch {
    return 0;
  }
  for (const name of names) await rm(join(incomingDir(dataDir), name), { recursive: true, force: true });
  return names.length;
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
  if (upload.size + IMAGE_HEADER_SIZE > maxBytes) throw new OtaError('too_large', `The image would be ${upload.size + IMAGE_HEADER_SIZE} bytes with its header; at most ${maxBytes}`);
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

/** Drops a checked image that will not be kept: a wrapped one is a file of the bridge's own (an upload's own file is the request's cleanup's). */
export async function discard(image: CheckedImage): Promise<void> {
  if (image.wrapped) await rm(image.file, { force: true });
}

export async function removeImage(dataDir: string, relative: string): Promise<void> {
  await rm(join(dataDir, relative), { force: true });
}

/** Pieces of one image for one transfer. */
export interface ImageSource {
  /** `length` bytes at `offset`; at once when the image is in memory. */
  read(offset: number, length: number): Uint8Array | Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Reads pieces of an image from disk for one transfer. */
export class ImageReader implements ImageSource {
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

interface Cached {
  bytes: Promise<Buffer>;
  size: number;
  /** Transfers reading it; a used image is never evicted. */
  users: number;
}

/**
 * Images in memory, one copy per image shared by every transfer of it, at
 * most `maxBytes` in all: a rollout of one version to 500 devices holds the
 * image once, not 500 times, and reads no disk per chunk (reading 1 KB from
 * disk per chunk was a quarter of the bridge's CPU at 500 transfers). When an
 * image does not fit beside those in use, its transfers read it from disk.
 * Unused images stay until room is needed (least recently opened first).
 */
export class ImageCache {
  private readonly entries = new Map<string, Cached>();
  private held = 0;

  constructor(
    private readonly dataDir: string,
    private readonly maxBytes: number,
  ) {}

  /** Bytes held now (never more than maxBytes). */
  get bytes(): number {
    return this.held;
  }

  /** A source for the image at `relative` (its `size` and SHA-256 name it: a path reused for other bytes is another image). */
  async open(relative: string, size: number, sha256: string): Promise<ImageSource> {
    const key = relative + '\n' + sha256;
    let e = this.entries.get(key);
    if (e) {
      this.entries.delete(key); // most recently opened last
      this.entries.set(key, e);
    } else {
      if (!this.makeRoom(size)) return ImageReader.open(this.dataDir, relative);
      e = { bytes: readFile(join(this.dataDir, relative)), size, users: 0 };
      this.entries.set(key, e);
      this.held += size;
    }
    const entry = e;
    entry.users++;
    let bytes: Buffer;
    try {
      bytes = await entry.bytes;
      if (bytes.length !== size) throw new Error(`image file has ${bytes.length} bytes, expected ${size}`);
    } catch (err) {
      entry.users--;
      this.drop(key, entry);
      throw err;
    }
    let open = true;
    return {
      read: (offset, length) => {
        if (offset + length > bytes.length) throw new Error(`image ends at ${bytes.length}, asked for ${offset + length}`);
        return bytes.subarray(offset, offset + length);
      },
      close: async () => {
        if (open) entry.users--;
        open = false;
      },
    };
  }

  /** Forgets an image whose file is gone (a deleted version). */
  forget(relative: string): void {
    for (const [key, e] of this.entries) if (key.startsWith(relative + '\n') && e.users === 0) this.drop(key, e);
  }

  private makeRoom(size: number): boolean {
    if (size > this.maxBytes) return false;
    for (const [key, e] of this.entries) {
      if (this.held + size <= this.maxBytes) break;
      if (e.users === 0) this.drop(key, e);
    }
    return this.held + size <= this.maxBytes;
  }

  private drop(key: string, e: Cached): void {
    if (this.entries.get(key) !== e) return;
    this.entries.delete(key);
    this.held -= e.size;
  }
}
