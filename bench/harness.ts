/**
 * The load generators' harness, shared by bench/broker.ts and bench/api.ts:
 * options from the command line, cleanup on exit and on signals (child
 * processes, temp dirs, open connections), CPU pinning with taskset, the
 * server under test in a child process (spawned pinned, its log collected,
 * the IPC "ready" handshake, requests, exit), the progress log and the
 * statistics and lines of the report.
 *
 * The child's side of the IPC is bench/server-harness.ts.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// ------------------------------------------------------------------ options

/** Reads --name flags and --name <value> options from the command line. */
export function commandLine(argv: string[] = process.argv.slice(2)) {
  const flag = (name: string): boolean => argv.includes('--' + name);
  return {
    flag,
    /** The word after --name, or null without --name. */
    str: (name: string): string | null => {
      const i = argv.indexOf('--' + name);
      return i < 0 ? null : argv[i + 1];
    },
    /**
     * Numeric options: each key of `defaults` from --its-kebab-case-name (a
     * number ≥ 0), else its default; with --quick, from `quick` where it has one.
     */
    numbers<T extends Record<string, number>>(defaults: T, quick: Partial<T>): T {
      const q = flag('quick');
      const out: Record<string, number> = {};
      for (const [key, dflt] of Object.entries(defaults)) {
        const name = key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
        const i = argv.indexOf('--' + name);
        const v = i < 0 ? (q ? (quick[key] ?? dflt) : dflt) : Number(argv[i + 1]);
        if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} needs a number ≥ 0`);
        out[key] = v;
      }
      return out as T;
    },
  };
}

// ------------------------------------------------------------------ cleanup

/** Set while a server is being stopped (and at exit): the connections closing then are expected. */
export const closing = { now: false };

/** A connection of the load generator: a plain socket (destroy) or a client (close). */
export type Connection = { destroy(): void } | { close(): void };

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let connections: Connection[] = [];

/** Closed by the next server exit or cleanup. */
export function trackConnections(...cs: Connection[]): void {
  for (const c of cs) connections.push(c);
}

function closeConnections(): void {
  for (const c of connections) {
    if ('destroy' in c) c.destroy();
    else c.close();
  }
  connections = [];
}

/** Closes every connection, kills every child process, deletes every temp dir. */
function cleanup(): void {
  closing.now = true;
  closeConnections();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

/** Runs cleanup() at exit and on SIGINT/SIGTERM (then exits 130). */
export function installCleanup(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.on(sig, () => {
      cleanup();
      process.exit(130);
    });
  process.on('exit', cleanup);
}

/** A new directory under the OS's temp dir, deleted at cleanup unless removeTempDir() was called first. */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Runs the benchmark: exits with its code (0 when it returns nothing), 1 when it throws; cleans up either way. */
export function runMain(main: () => Promise<number | void>): void {
  main()
    .then((code) => {
      cleanup();
      process.exit(code ?? 0);
    })
    .catch((e: Error) => {
      console.error(e.stack ?? String(e));
      cleanup();
      process.exit(1);
    });
}

// ------------------------------------------------------------------ CPU pinning

export const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
export const cpuCount = cpus().length;
/** Whether the load generator and its children are pinned: taskset and at least 2 CPUs. */
export const pinned = hasTaskset && cpuCount >= 2;

/** Pins this process (every thread: -a), the load generator, to CPU1. Children inherit this unless told otherwise. */
export function pinLoadGenerator(): void {
  if (pinned) execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
}

// ------------------------------------------------------------------ child processes

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Runs `script` (TypeScript, through tsx) in a child node with an IPC channel, pinned to `cpuList`; killed at cleanup. */
export function spawnChild(script: string, args: string[], cpuList: string, nodeFlags: string[] = []): ChildProcess {
  const nodeArgs = [...nodeFlags, '--import', 'tsx', script, ...args];
  const c = pinned
    ? spawn('taskset', ['-c', cpuList, process.execPath, ...nodeArgs], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
    : spawn(process.execPath, nodeArgs, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
}

/** Log lines a child printed: how many, the first few. */
export interface ChildLog {
  count: number;
  first: string[];
}

/** Counts the child's non-empty output lines (those matching `ignore` aside), keeping the first 3. */
export function collectLog(c: ChildProcess, ignore?: RegExp): ChildLog {
  const log: ChildLog = { count: 0, first: [] };
  const take = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim() || ignore?.test(line)) continue;
      log.count++;
      if (log.first.length < 3) log.first.push(line.slice(0, 300));
    }
  };
  c.stdout?.on('data', take);
  c.stderr?.on('data', take);
  return log;
}

/** What a child may send: any message with an `op`; { op: 'error', message } fails whatever is awaited. */
type AnyReply = { op: string; message?: unknown };

/** The child's first message that `match`es; rejects on its error message, its exit or after `ms`. */
export function awaitReply<R extends Rep, Rep extends AnyReply = AnyReply>(c: ChildProcess, match: (m: Rep) => boolean, ms: number, what: string, who = 'server'): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`${what}: no answer within ${ms} ms`)), ms);
    const onMessage = (m: Rep): void => {
      if (m.op === 'error') return done(new Error(`${what}: ${m.message}`));
      if (match(m)) done(null, m as R);
    };
    const onExit = (code: number | null): void => done(new Error(`${what}: ${who} process exited (${code})`));
    function done(e: Error | null, m?: R): void {
      clearTimeout(timer);
      c.off('message', onMessage);
      c.off('exit', onExit);
      if (e) reject(e);
      else resolve(m as R);
    }
    c.on('message', onMessage);
    c.once('exit', onExit);
  });
}

/** A server under test in its own process, answering requests (bench/server-harness.ts's serve). */
export interface ChildServer<Req extends { id: number; op: string }, Rep extends AnyReply, Ready extends Rep> {
  ready: Ready;
  log: ChildLog;
  request<R extends Rep>(op: Req['op'], extra?: object): Promise<R>;
  /** CPU time the server process has used (user + system), ms. */
  cpuMs(): Promise<number>;
  /** Stops the server (SIGKILL after 5 s), closes the tracked connections, deletes its temp dir. */
  exit(): Promise<void>;
}

export interface ChildServerOptions {
  script: string;
  args: string[];
  /** The CPUs it is pinned to (taskset -c). */
  cpuList: string;
  nodeFlags?: string[];
  /** Lines of its output not counted in its log. */
  ignoreLog?: RegExp;
  /** For messages: its kind, and what it is ('broker', 'server'). */
  name: string;
  who: string;
  readyMs: number;
  /** A temp dir (makeTempDir) the server uses, deleted when it has exited. */
  dir: string | null;
}

/** Spawns a server and waits for its { op: 'ready' }. */
export async function startChildServer<Req extends { id: number; op: string }, Rep extends AnyReply, Ready extends Rep>(o: ChildServerOptions): Promise<ChildServer<Req, Rep, Ready>> {
  const c = spawnChild(o.script, o.args, o.cpuList, o.nodeFlags);
  const log = collectLog(c, o.ignoreLog);
  const ready = await awaitReply<Ready, Rep>(c, (m) => m.op === 'ready', o.readyMs, o.name + ' start', o.who);
  let nextId = 1;
  const request = <R extends Rep>(op: Req['op'], extra: object = {}): Promise<R> => {
    const id = nextId++;
    c.send({ ...extra, id, op } as Req);
    return awaitReply<R, Rep>(c, (m) => 'id' in m && m.id === id, 30_000, o.name + ' ' + op, o.who);
  };
  return {
    ready,
    log,
    request,
    async cpuMs() {
      const r = (await request('cpu')) as unknown as { userMs: number; systemMs: number };
      return r.userMs + r.systemMs;
    },
    async exit() {
      closing.now = true;
      if (c.exitCode === null && c.signalCode === null) {
        const exited = new Promise<void>((r) => c.once('exit', () => r()));
        try {
          c.send({ id: 0, op: 'exit' });
        } catch {
          /* already gone */
        }
        const t = setTimeout(() => c.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      closeConnections();
      // Let the close events of the connections just closed run while `closing` holds.
      await new Promise((r) => setTimeout(r, 50));
      closing.now = false;
      if (o.dir) removeTempDir(o.dir);
    },
  };
}

/**
 * Starts counting the CPU time of `server` and of this process (the load generator); the function
 * returned stops and gives each as % of one core over `wallMs`.
 */
export async function cpuMeter(server: { cpuMs(): Promise<number> }): Promise<(wallMs: number) => Promise<{ server: number; load: number }>> {
  const server0 = await server.cpuMs();
  const load0 = process.cpuUsage();
  return async (wallMs) => {
    const load = process.cpuUsage(load0);
    const server1 = await server.cpuMs();
    return { server: ((server1 - server0) / wallMs) * 100, load: ((load.user + load.system) / 1000 / wallMs) * 100 };
  };
}

// ------------------------------------------------------------------ progress log

/** When the run started, and the machine's 1-minute load average then (other work makes the cells noisy): set by startRun. */
const run = { t0: performance.now(), loadBefore: loadavg()[0] };

/** A line of the progress log (stderr), with the seconds since the run started. */
export function log(msg: string): void {
  console.error(`[${((performance.now() - run.t0) / 1000).toFixed(1)} s] ${msg}`);
}

/** Starts the run's clock and logs its first lines: a busy machine, the pinning (`servers`: what runs on CPU0). */
export function startRun(servers: string): void {
  run.t0 = performance.now();
  run.loadBefore = loadavg()[0];
  if (run.loadBefore > 0.5) log(`warning: the machine is busy (1-minute load average ${run.loadBefore.toFixed(2)}): expect noisy cells`);
  log(`pinning: ${pinned ? `${servers} CPU0, load generator CPU1 (taskset)` : `none (taskset ${hasTaskset ? 'present' : 'missing'}, ${cpuCount} CPUs)`}`);
}

// ------------------------------------------------------------------ statistics and report

export const median = (xs: number[]): number => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

/** The q-quantile (0 < q ≤ 1) of the first `n` values of `sorted` (ascending); NaN when n is 0. */
export const percentile = (sorted: ArrayLike<number>, n: number, q: number): number => (n ? sorted[Math.min(n - 1, Math.ceil(q * n) - 1)] : NaN);

export const fmt = (x: number, digits = 0): string =>
  Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a';

/** A table cell: the median (min–max) of the runs, and how many failed (NaN). */
export function cell(xs: number[], digits = 0): string {
  const v = xs.filter((x) => Number.isFinite(x));
  const bad = xs.length - v.length;
  if (!xs.length) return 'not run';
  if (!v.length) return `failed (${xs.length}/${xs.length})`;
  const m = fmt(median(v), digits);
  const range = v.length > 1 ? ` (${fmt(Math.min(...v), digits)}–${fmt(Math.max(...v), digits)})` : '';
  return m + range + (bad ? ` **${bad}/${xs.length} failed**` : '');
}

/** A markdown table's lines. */
export function table(header: string[], rows: string[][]): string[] {
  return ['| ' + header.join(' | ') + ' |', '|' + header.map(() => '---|').join(''), ...rows.map((r) => '| ' + r.join(' | ') + ' |')];
}

/** The report's "machine" line: `pinning` is shown when pinned; `rest` follows "loopback; ". */
export function machineLine(pinning: string, rest: string): string {
  return `- machine: ${cpuCount} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}, aedes 1.2; ${pinned ? pinning : 'no CPU pinning'}; loopback; ${rest}`;
}

/** The report's last line: the run's duration and the machine's load. */
export function wholeRunLine(note = ''): string {
  return `- whole run: ${((performance.now() - run.t0) / 1000).toFixed(0)} s; machine 1-minute load average at start ${run.loadBefore.toFixed(2)}, at end ${loadavg()[0].toFixed(2)}${note}`;
}
