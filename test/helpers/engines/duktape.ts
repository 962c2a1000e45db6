/**
 * The Duktape engine host: the C host in a child process, driven over its line
 * protocol (firmware/hosts/README.md). One command in flight at a time; event
 * lines (net, flash, log, ...) are dispatched as they arrive, replies are
 * collected until the command's `ok`.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostBase, checkTick } from './base.js';
import { escapeText, fromHex, toHex, unescapeText } from './codec.js';
import { buildDuktapeHost, type DuktapeBuild } from './duktape-build.js';
import { checkFlash } from './flash.js';
import {
  BOOT_MAX, DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_HEAP_CAP, EngineError,
  type EngineHost, type EngineOptions, type FlashState, type MemoryInfo,
} from './types.js';

interface Pending {
  line: string;
  replies: string[];
  resolve(replies: string[]): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

const START_TIMEOUT_MS = 10_000;
const QUIT_GRACE_MS = 3_000;

export async function startDuktape(options: EngineOptions): Promise<EngineHost> {
  checkFlash(options.flash, BOOT_MAX);
  const build = await buildDuktapeHost(options.duktapeConfig);
  const host = new DuktapeHost(options, build, await mkdtemp(join(tmpdir(), 'flotilla-duk-')));
  try {
    await host.start();
  } catch (e) {
    await host.close();
    throw e;
  }
  return host;
}

class DuktapeHost extends HostBase implements EngineHost {
  readonly name = 'duktape' as const;
  readonly bits: number;
  readonly info: string;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly exited: Promise<void>;
  private exitError: Error | null = null;
  private pending: Pending | null = null;
  private onReady: ((bits: number) => void) | null = null;
  private partial = '';
  private stderrTail = '';
  private fatal = '';
  private runs = 0;
  private closing: Promise<void> | null = null;
  private readonly timeoutMs: number;
  private readonly cap: number;

  constructor(options: EngineOptions, build: DuktapeBuild, private readonly tmp: string) {
    super(options);
    this.bits = build.bits;
    this.info = `Duktape 2.7 C host, ${build.bits}-bit (gcc ${build.flags.join(' ')}; ` +
      `compiled in ${build.compileMs} ms${build.cached ? ', cached' : ''})` +
      (build.fallbackReason ? `; 32-bit build failed: ${build.fallbackReason}` : '');
    this.timeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.cap = options.heapCap ?? DEFAULT_HEAP_CAP;
    this.child = spawn(build.binary, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('utf8');
    this.child.stderr.setEncoding('utf8');
    this.child.stdout.on('data', (s: string) => this.onStdout(s));
    this.child.stderr.on('data', (s: string) => { this.stderrTail = (this.stderrTail + s).slice(-2000); });
    this.child.stdin.on('error', () => { /* EPIPE after exit: reported by the exit handler */ });
    this.exited = new Promise((resolveExit) => {
      this.child.once('error', (e) => this.onExit(`cannot start: ${e.message}`, resolveExit));
      this.child.once('exit', (code, signal) => this.onExit(`exited (${signal ?? code})`, resolveExit));
    });
  }

  /** Waits for `ready`, then sends the device configuration. */
  async start(): Promise<void> {
    await new Promise<void>((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error('duktape host did not start')), START_TIMEOUT_MS);
      this.onReady = () => { clearTimeout(timer); resolveReady(); };
      this.exited.then(() => { clearTimeout(timer); reject(this.exitError); });
    });
    const o = this.options;
    const f = o.flash;
    const lines = [
      `cap ${this.cap}`, `slotsize ${f.slotSize}`, `resetreason ${o.resetReason ?? 0}`,
      `battery ${o.battery ?? -1}`, `sigstr ${o.signalStrength ?? -1}`,
      ...f.slots.map((s, i) => `flash ${i} ${toHex(trimErased(s))}`),
      f.boot ? `boot ${toHex(f.boot)}` : 'noboot',
    ];
    for (const line of lines) {
      const replies = await this.serial('configure', () => this.command(line));
      const err = replies.find((r) => r.startsWith('error '));
      if (err) throw new Error(`duktape host refused "${line.slice(0, 40)}": ${err}`);
    }
  }

  run(source: string, filename = 'program.js'): Promise<void> {
    return this.serial('run', async () => {
      const path = join(this.tmp, `${++this.runs}-${filename.replace(/[^\w.-]/g, '_')}`);
      await writeFile(path, source);
      try {
        this.failOnError(await this.command(`run ${path}`));
      } finally {
        await rm(path, { force: true });
      }
    });
  }

  netOpened(): Promise<void> {
    return this.serial('netOpened', async () => void (await this.command('open')));
  }
  netData(bytes: Uint8Array): Promise<void> {
    const line = `data ${toHex(bytes)}`; // copy now: the caller may reuse its buffer
    return this.serial('netData', async () => void (await this.command(line)));
  }
  netClosed(): Promise<void> {
    return this.serial('netClosed', async () => void (await this.command('close')));
  }

  tick(ms: number): Promise<void> {
    checkTick(ms);
    return this.serial('tick', async () => {
      await this.command(`tick ${ms}`);
      this.clock += ms;
    });
  }

  memory(): Promise<MemoryInfo> {
    return this.serial('memory', async () => {
      const mem = (await this.command('gc')).find((r) => r.startsWith('mem '));
      const [used, peak] = (mem ?? '').split(' ').slice(1).map(Number);
      if (used === undefined || peak === undefined) throw new Error(`duktape host: bad memory reply ${mem}`);
      return { used, peak, total: this.cap };
    });
  }

  evaluate(js: string): Promise<string> {
    return this.serial('evaluate', async () => {
      const replies = await this.command(`eval ${escapeText(js)}`);
      this.failOnError(replies);
      const r = replies.find((x) => x.startsWith('result '));
      if (r === undefined) throw new Error('duktape host: no result');
      return unescapeText(r.slice(7));
    });
  }

  deviceFlash(): Promise<FlashState> {
    return this.serial('deviceFlash', async () => {
      const f: FlashState = { slotSize: this.options.flash.slotSize, slots: [new Uint8Array(0), new Uint8Array(0)], boot: null };
      for (const r of await this.command('dump')) {
        const [, what, a, b] = r.split(' ');
        if (what === 'slot') f.slots[Number(a)] = fromHex(b ?? '');
        else if (what === 'boot') f.boot = a === '-' ? null : fromHex(a ?? '');
      }
      return f;
    });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      if (!this.exitError) {
        this.child.stdin.end('quit\n');
        const timer = setTimeout(() => this.child.kill('SIGKILL'), QUIT_GRACE_MS);
        await this.exited;
        clearTimeout(timer);
      }
      await rm(this.tmp, { recursive: true, force: true });
    })();
    return this.closing;
  }

  private failOnError(replies: string[]): void {
    const err = replies.find((r) => r.startsWith('error '));
    if (err !== undefined) throw new EngineError('duktape', unescapeText(err.slice(6)));
  }

  /** Sends one command line and resolves its reply lines at `ok`. Call only inside serial(). */
  private command(line: string): Promise<string[]> {
    if (this.exitError) return Promise.reject(this.exitError);
    return new Promise((resolveCmd, reject) => {
      const timer = setTimeout(() => {
        this.pending = null;
        reject(new Error(`duktape host: "${line.slice(0, 60)}" took over ${this.timeoutMs} ms; killed`));
        this.child.kill('SIGKILL');
      }, this.timeoutMs);
      this.pending = { line, replies: [], resolve: resolveCmd, reject, timer };
      this.child.stdin.write(`${line}\n`);
    });
  }

  private onStdout(chunk: string): void {
    this.partial += chunk;
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      const line = this.partial.slice(0, nl);
      this.partial = this.partial.slice(nl + 1);
      this.onLine(line);
    }
  }

  private onLine(line: string): void {
    const sp = line.indexOf(' ');
    const head = sp < 0 ? line : line.slice(0, sp);
    const rest = sp < 0 ? '' : line.slice(sp + 1);
    switch (head) {
      case 'ready': this.onReady?.(Number(rest.split(' ')[0])); return;
      case 'ok': {
        const p = this.pending;
        this.pending = null;
        if (p) { clearTimeout(p.timer); p.resolve(p.replies); }
        return;
      }
      case 'net':
        if (rest === 'open') this.emit('onOpen');
        else if (rest === 'close') this.emit('onNetClose');
        else if (rest.startsWith('send ')) this.emit('onSend', fromHex(rest.slice(5)));
        return;
      case 'flash': {
        const [op, slot, a, b] = rest.split(' ');
        if (op === 'write') this.gotFlashOp({ kind: 'write', slot: Number(slot), offset: Number(a), bytes: fromHex(b ?? '') });
        else if (op === 'erase') this.gotFlashOp({ kind: 'erase', slot: Number(slot) });
        return;
      }
      case 'boot':
        if (rest.startsWith('write')) this.gotFlashOp({ kind: 'boot', record: fromHex(rest.slice(6)) });
        return;
      case 'signal': this.emit('onSignal', rest === '1'); return;
      case 'reset': this.gotReset(Number(rest) || 0); return;
      case 'log': this.gotLog(unescapeText(rest)); return;
      case 'uncaught': this.gotUncaught(unescapeText(rest)); return;
      case 'fatal': this.fatal = rest; return;
      default: this.pending?.replies.push(line);
    }
  }

  private onExit(why: string, done: () => void): void {
    if (this.exitError) return;
    const detail = [this.fatal && `fatal: ${this.fatal}`, this.stderrTail.trim()].filter(Boolean).join('; ');
    this.exitError = new Error(`duktape host ${why}${detail ? `: ${detail}` : ''}`);
    const p = this.pending;
    this.pending = null;
    if (p) {
      clearTimeout(p.timer);
      // `quit` answers `bye` + `ok` before exiting; anything else is a crash.
      if (p.line === 'quit') p.resolve(p.replies); else p.reject(this.exitError);
    }
    done();
  }
}

/** Drops trailing erased bytes: the host fills the rest of a slot with 0xff. */
function trimErased(s: Uint8Array): Uint8Array {
  let n = s.length;
  while (n > 0 && s[n - 1] === 0xff) n--;
  return s.subarray(0, n);
}
