/**
 * Builds firmware/hosts/duktape/duk-host.c against Debian's duktape-dev into
 * test/.build/, once per (source, flags): 32-bit like the target MCU when
 * gcc-multilib works, else native. A manifest records what was built.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const DUK_HOST_SOURCE = join(ROOT, 'firmware/hosts/duktape/duk-host.c');
export const BUILD_DIR = join(ROOT, 'test/.build');
const DUK_DIR = '/usr/share/duktape';
const BASE_FLAGS = ['-Os', '-std=c99', `-I${DUK_DIR}`];
const VARIANTS: { bits: number; flags: string[] }[] = [
  { bits: 32, flags: ['-m32', ...BASE_FLAGS] },
  { bits: 64, flags: BASE_FLAGS },
];
const COMPILE_TIMEOUT_MS = 300_000;

export interface DuktapeBuild {
  binary: string;
  /** Pointer width the binary reports at start (32 with -m32). */
  bits: number;
  flags: string[];
  /** Wall time of the gcc run that produced the binary. */
  compileMs: number;
  /** True when this process reused an earlier build. */
  cached: boolean;
  /** Why the 32-bit build was not used, when it was not. */
  fallbackReason?: string;
}

let building: Promise<DuktapeBuild> | undefined;

/** The host binary, built on first use (memoized per process). */
export function buildDuktapeHost(): Promise<DuktapeBuild> {
  building ??= build().catch((e: unknown) => {
    building = undefined;
    throw e;
  });
  return building;
}

function run(cmd: string, args: string[], input?: string, timeout = COMPILE_TIMEOUT_MS): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = execFile(cmd, args, { timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} failed: ${err.message}\n${stderr.slice(-4000)}`));
      else resolveRun(stdout);
    });
    child.stdin?.end(input ?? '');
  });
}

async function build(): Promise<DuktapeBuild> {
  const source = await readFile(DUK_HOST_SOURCE, 'utf8');
  const hash = createHash('sha256').update(source).update(JSON.stringify([DUK_DIR, VARIANTS])).digest('hex').slice(0, 16);
  const manifestPath = join(BUILD_DIR, `duk-host-${hash}.json`);
  if (existsSync(manifestPath)) {
    const m = JSON.parse(await readFile(manifestPath, 'utf8')) as Omit<DuktapeBuild, 'cached'>;
    if (existsSync(m.binary)) return { ...m, cached: true };
  }
  await mkdir(BUILD_DIR, { recursive: true });
  let fallbackReason: string | undefined;
  for (const v of VARIANTS) {
    const binary = join(BUILD_DIR, `duk-host-${hash}-${v.bits}`);
    const tmp = `${binary}.${process.pid}.tmp`;
    const t0 = performance.now();
    try {
      await run('gcc', [...v.flags, '-o', tmp, DUK_HOST_SOURCE, join(DUK_DIR, 'duktape.c'), '-lm']);
      const compileMs = Math.round(performance.now() - t0);
      // A binary that links may still not run (no 32-bit libc): check it starts.
      const out = await run(tmp, [], 'quit\n', 10_000);
      const bits = Number(/^ready (\d+) /.exec(out)?.[1]);
      if (!bits) throw new Error(`host did not start: ${out.slice(0, 200)}`);
      await rename(tmp, binary);
      const result = { binary, bits, flags: v.flags, compileMs, ...(fallbackReason ? { fallbackReason } : {}) };
      await writeFile(`${manifestPath}.${process.pid}.tmp`, JSON.stringify(result, null, 2));
      await rename(`${manifestPath}.${process.pid}.tmp`, manifestPath);
      await removeStale(hash);
      return { ...result, cached: false };
    } catch (e) {
      await rm(tmp, { force: true });
      fallbackReason = `${v.flags.join(' ')}: ${(e as Error).message.split('\n').slice(0, 3).join(' ')}`;
    }
  }
  throw new Error(`cannot build the Duktape host: ${fallbackReason}`);
}

/** Drops builds of earlier sources, so test/.build does not grow with every edit. */
async function removeStale(hash: string): Promise<void> {
  for (const f of await readdir(BUILD_DIR)) {
    if (/^duk-host-[0-9a-f]{16}(-\d+|\.json)$/.test(f) && !f.includes(hash)) await rm(join(BUILD_DIR, f), { force: true });
  }
}
