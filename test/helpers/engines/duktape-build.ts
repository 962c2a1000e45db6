/**
 * Builds firmware/hosts/duktape/duk-host.c against Debian's duktape-dev into
 * test/.build/, once per (source, flags, configuration): 32-bit like the target
 * MCU when gcc-multilib works, else native. A manifest records what was built.
 *
 * Two configurations: Debian's as packaged (what the tests run), and
 * 'low-memory': the same sources with Duktape's low-memory options appended to
 * duk_config.h (what a board port would use; the firmware bench reports both).
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

export type DuktapeConfig = 'debian' | 'low-memory';

/**
 * Appended to duk_config.h for 'low-memory': no line tables or tracebacks, no
 * per-function name/fileName properties, no object hash parts, short errors,
 * 16-bit refcounts and sizes (strings, buffers, objects under 64 KB), strings
 * without a cached array index or character count (computed when asked), and
 * 16-bit heap pointers: 4-byte units into the host's 256 KB arena
 * (duk-host.c). Measured on the agent's heap: the first group -20 %; then the
 * string fields and pointer compression about -5 % and -3 % more.
 */
const LOW_MEMORY_OPTIONS = `
#undef DUK_USE_PC2LINE
#undef DUK_USE_TRACEBACKS
#undef DUK_USE_VERBOSE_ERRORS
#undef DUK_USE_FUNC_NAME_PROPERTY
#undef DUK_USE_FUNC_FILENAME_PROPERTY
#undef DUK_USE_HOBJECT_HASH_PART
#define DUK_USE_REFCOUNT16
#define DUK_USE_STRHASH16
#define DUK_USE_STRLEN16
#define DUK_USE_BUFLEN16
#define DUK_USE_OBJSIZES16
#undef DUK_USE_HSTRING_ARRIDX
#undef DUK_USE_HSTRING_CLEN
#define DUK_USE_HSTRING_LAZY_CLEN
#define DUK_USE_HEAPPTR16
#define DUK_USE_STRTAB_PTRCOMP
extern unsigned char *const flotilla_arena;
#define DUK_USE_HEAPPTR_ENC16(ud, p) ((duk_uint16_t) ((p) == NULL ? 0 : ((duk_size_t) ((unsigned char *) (p) - flotilla_arena)) >> 2))
#define DUK_USE_HEAPPTR_DEC16(ud, x) ((x) == 0 ? NULL : (void *) (flotilla_arena + ((duk_size_t) (x) << 2)))
`;

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

const building = new Map<DuktapeConfig, Promise<DuktapeBuild>>();

/** The host binary for a configuration, built on first use (memoized per process). */
export function buildDuktapeHost(config: DuktapeConfig = 'debian'): Promise<DuktapeBuild> {
  let b = building.get(config);
  if (!b) {
    b = build(config).catch((e: unknown) => {
      building.delete(config);
      throw e;
    });
    building.set(config, b);
  }
  return b;
}

/** Where duktape.c is compiled from: Debian's directory, or a copy with the low-memory options appended. */
async function sourcesFor(config: DuktapeConfig, hash: string): Promise<string> {
  if (config === 'debian') return DUK_DIR;
  // duktape.h includes "duk_config.h" from its own directory, so the three files travel together.
  const dir = join(BUILD_DIR, `duk-lowmem-src-${hash}`);
  if (!existsSync(join(dir, 'duk_config.h'))) {
    await mkdir(dir, { recursive: true });
    for (const f of ['duktape.c', 'duktape.h']) await writeFile(join(dir, f), await readFile(join(DUK_DIR, f)));
    const cfg = await readFile(join(DUK_DIR, 'duk_config.h'), 'utf8');
    const end = cfg.lastIndexOf('#endif');
    await writeFile(join(dir, 'duk_config.h'), cfg.slice(0, end) + LOW_MEMORY_OPTIONS + cfg.slice(end));
  }
  return dir;
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

async function build(config: DuktapeConfig): Promise<DuktapeBuild> {
  const source = await readFile(DUK_HOST_SOURCE, 'utf8');
  const tag = config === 'debian' ? 'duk-host' : 'duk-host-lowmem';
  const hash = createHash('sha256').update(source).update(JSON.stringify([DUK_DIR, VARIANTS, config, config === 'debian' ? '' : LOW_MEMORY_OPTIONS])).digest('hex').slice(0, 16);
  const manifestPath = join(BUILD_DIR, `${tag}-${hash}.json`);
  if (existsSync(manifestPath)) {
    const m = JSON.parse(await readFile(manifestPath, 'utf8')) as Omit<DuktapeBuild, 'cached'>;
    if (existsSync(m.binary)) return { ...m, cached: true };
  }
  await mkdir(BUILD_DIR, { recursive: true });
  const src = await sourcesFor(config, hash);
  let fallbackReason: string | undefined;
  for (const v of VARIANTS) {
    const binary = join(BUILD_DIR, `${tag}-${hash}-${v.bits}`);
    const tmp = `${binary}.${process.pid}.tmp`;
    const t0 = performance.now();
    const flags = v.flags.map((f) => (f === `-I${DUK_DIR}` ? `-I${src}` : f));
    try {
      await run('gcc', [...flags, '-o', tmp, DUK_HOST_SOURCE, join(src, 'duktape.c'), '-lm']);
      const compileMs = Math.round(performance.now() - t0);
      // A binary that links may still not run (no 32-bit libc): check it starts.
      const out = await run(tmp, [], 'quit\n', 10_000);
      const bits = Number(/^ready (\d+) /.exec(out)?.[1]);
      if (!bits) throw new Error(`host did not start: ${out.slice(0, 200)}`);
      await rename(tmp, binary);
      const result = { binary, bits, flags, compileMs, ...(fallbackReason ? { fallbackReason } : {}) };
      await writeFile(`${manifestPath}.${process.pid}.tmp`, JSON.stringify(result, null, 2));
      await rename(`${manifestPath}.${process.pid}.tmp`, manifestPath);
      await removeStale(tag, hash);
      return { ...result, cached: false };
    } catch (e) {
      await rm(tmp, { force: true });
      fallbackReason = `${v.flags.join(' ')}: ${(e as Error).message.split('\n').slice(0, 3).join(' ')}`;
    }
  }
  throw new Error(`cannot build the Duktape host: ${fallbackReason}`);
}

/** Drops builds of earlier sources of the same configuration, so test/.build does not grow with every edit. */
async function removeStale(tag: string, hash: string): Promise<void> {
  const mine = new RegExp('^' + tag + '-[0-9a-f]{16}(-\\d+|\\.json)$');
  for (const f of await readdir(BUILD_DIR)) {
    const stale = (mine.test(f) || (tag === 'duk-host-lowmem' && /^duk-lowmem-src-[0-9a-f]{16}$/.test(f))) && !f.includes(hash);
    if (stale) await rm(join(BUILD_DIR, f), { recursive: true, force: true });
  }
}
