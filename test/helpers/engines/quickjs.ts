/**
 * The QuickJS engine host: quickjs-emscripten (wasm32) in this process, the
 * HAL as host functions, flash and timers held in Node. Every handle the host
 * keeps (callbacks, timers, helpers) is a dup it disposes; close() checks the
 * runtime is gone.
 */
import { getQuickJS, type QuickJSContext, type QuickJSHandle, type QuickJSRuntime } from 'quickjs-emscripten';
import { HostBase, checkTick } from './base.js';
import { checkFlash, cloneFlash } from './flash.js';
import {
  BOOT_MAX, DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_HEAP_CAP, EngineError,
  type EngineHost, type EngineOptions, type FlashState, type MemoryInfo,
} from './types.js';

/** Same bound and message as the C host: a timer re-arming itself at 0 ms. */
const TIMERS_PER_TICK = 100_000;
const MAX_STACK = 65_536;

/**
 * Guest-side helpers, captured at start so a program deleting globals cannot
 * break the host. Arrow functions: no prototype objects, no cycles.
 * gc: QuickJS frees acyclic garbage at once but collects cycles only when its
 * allocation counter passes a threshold, and the wasm build exports no JS_RunGC.
 * So make unreachable cycles that hold buffers until a WeakRef to the first one
 * clears: a GC ran, and since the filler was garbage too, the next threshold is
 * set from the live heap (1.5 x used), not inflated.
 */
const HELPERS = `(() => {
  const S = String, U8 = Uint8Array, AB = ArrayBuffer, TE = TypeError, RE = RangeError, WR = WeakRef;
  return [
    (x) => { try { return S(x); } catch (e) { return '<unprintable ' + typeof x + '>'; } },
    (ab) => new U8(ab),
    (x) => {
      if (!AB.isView(x)) throw new TE('bytes must be a Uint8Array');
      return x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength);
    },
    (range, m) => (range ? new RE(m) : new TE(m)),
    () => {
      let probe = {}; probe.self = probe;
      const w = new WR(probe); probe = null;
      let n = 0;
      while (w.deref() !== undefined && n < 16384) { let c = { b: new AB(4096) }; c.self = c; c = null; n++; }
      return n;
    },
  ];
})()`;

interface Timer { due: number; fn: QuickJSHandle }

export async function startQuickJs(options: EngineOptions): Promise<EngineHost> {
  checkFlash(options.flash, BOOT_MAX);
  const module = await getQuickJS();
  return new QuickJsHost(options, module.newContext());
}

class QuickJsHost extends HostBase implements EngineHost {
  readonly name = 'quickjs' as const;
  readonly bits = 32;
  readonly info = 'QuickJS 2025-09-13 (quickjs-emscripten 0.32.0, wasm32, in process)';
  private readonly rt: QuickJSRuntime;
  private readonly dev: FlashState;
  private readonly cap: number;
  private readonly timeoutMs: number;
  private deadline = Infinity;
  private net: { onOpen: QuickJSHandle; onData: QuickJSHandle; onClose: QuickJSHandle } | null = null;
  private readonly timers = new Map<number, Timer>();
  private nextTimerId = 1;
  private readonly helpers: QuickJSHandle[];
  private closing: Promise<void> | null = null;

  constructor(options: EngineOptions, private readonly vm: QuickJSContext) {
    super(options);
    this.rt = vm.runtime;
    this.dev = cloneFlash(options.flash);
    this.cap = options.heapCap ?? DEFAULT_HEAP_CAP;
    this.timeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.rt.setMaxStackSize(MAX_STACK);
    // Coarse guard only: QuickJS's limit does not track memory_used_size, and gc() needs headroom.
    this.rt.setMemoryLimit(Math.max(this.cap * 4, 8 << 20));
    this.rt.setInterruptHandler(() => Date.now() > this.deadline);
    const list = vm.unwrapResult(vm.evalCode(HELPERS, 'host-helpers.js'));
    this.helpers = [0, 1, 2, 3, 4].map((i) => vm.getProp(list, i));
    list.dispose();
    this.installHal();
  }

  run(source: string, filename = 'program.js'): Promise<void> {
    return this.serial('run', () => {
      if (this.halted) throw new EngineError('quickjs', 'halted after reset');
      const r = this.enter(() => this.vm.evalCode(source, filename));
      if (r.error) throw new EngineError('quickjs', this.consumeString(r.error));
      r.value.dispose();
    });
  }

  netOpened(): Promise<void> {
    return this.serial('netOpened', () => {
      if (this.net && !this.halted) this.callGuest(this.net.onOpen);
    });
  }
  netData(bytes: Uint8Array): Promise<void> {
    const copy = bytes.slice(); // the caller may reuse its buffer
    return this.serial('netData', () => {
      if (!this.net || this.halted) return;
      const u8 = this.guestBytes(copy);
      try {
        this.callGuest(this.net.onData, u8);
      } finally {
        u8.dispose();
      }
    });
  }
  netClosed(): Promise<void> {
    return this.serial('netClosed', () => {
      const n = this.net;
      if (!n || this.halted) return;
      this.net = null; // forget the link first: onClose may reopen
      try {
        this.callGuest(n.onClose);
      } finally {
        n.onOpen.dispose(); n.onData.dispose(); n.onClose.dispose();
      }
    });
  }

  tick(ms: number): Promise<void> {
    checkTick(ms);
    return this.serial('tick', () => {
      const target = this.clock + ms;
      let fired = 0;
      while (!this.halted) {
        let bestId = 0;
        let best: Timer | undefined;
        for (const [id, t] of this.timers) {
          if (t.due <= target && (!best || t.due < best.due || (t.due === best.due && id < bestId))) { best = t; bestId = id; }
        }
        if (!best) break;
        if (++fired > TIMERS_PER_TICK) { this.gotUncaught('tick: too many timers due, rest postponed'); break; }
        this.clock = Math.max(this.clock, best.due);
        this.timers.delete(bestId);
        try {
          this.callGuest(best.fn);
        } finally {
          best.fn.dispose();
        }
      }
      this.clock = Math.max(this.clock, target);
    });
  }

  memory(): Promise<MemoryInfo> {
    return this.serial('memory', () => {
      const r = this.enter(() => this.vm.callFunction(this.helpers[4]!, this.vm.undefined));
      this.vm.unwrapResult(r).dispose();
      const u = this.memoryUsage();
      return {
        used: u.memory_used_size,
        total: this.cap,
        parts: {
          atoms: u.atom_size,
          objects: u.obj_size + u.prop_size + u.shape_size,
          functions: u.js_func_size,
          bytecode: u.js_func_code_size,
          lineTables: u.js_func_pc2line_size,
        },
      };
    });
  }

  evaluate(js: string): Promise<string> {
    return this.serial('evaluate', () => {
      const r = this.enter(() => this.vm.evalCode(js, 'eval.js'));
      if (r.error) throw new EngineError('quickjs', this.consumeString(r.error));
      return this.consumeString(r.value);
    });
  }

  deviceFlash(): Promise<FlashState> {
    return this.serial('deviceFlash', () => cloneFlash(this.dev));
  }

  close(): Promise<void> {
    // Queued behind the command in progress: a listener may call close() mid-callback.
    this.closing ??= this.drained().then(() => {
      this.closed = true;
      if (this.net) { this.net.onOpen.dispose(); this.net.onData.dispose(); this.net.onClose.dispose(); this.net = null; }
      for (const t of this.timers.values()) t.fn.dispose();
      this.timers.clear();
      for (const h of this.helpers) h.dispose();
      this.rt.removeInterruptHandler();
      this.vm.dispose(); // also frees the runtime; QuickJS asserts no object is left
      if (this.rt.alive) throw new Error('quickjs: runtime still alive after dispose');
    });
    return this.closing;
  }

  // ---- guest plumbing ----

  /** Runs one entry into the guest under the hang deadline, then its promise jobs. */
  private enter<T>(fn: () => T): T {
    this.deadline = Date.now() + this.timeoutMs;
    try {
      const result = fn();
      for (let i = 0; i < 1000 && this.rt.hasPendingJob(); i++) {
        const jobs = this.rt.executePendingJobs();
        if (jobs.error) this.gotUncaught(this.consumeString(jobs.error));
      }
      return result;
    } finally {
      this.deadline = Infinity;
    }
  }

  /** Calls a program callback; a throw is reported as uncaught, never propagated. */
  private callGuest(fn: QuickJSHandle, ...args: QuickJSHandle[]): void {
    const r = this.enter(() => this.vm.callFunction(fn, this.vm.undefined, ...args));
    if (r.error) this.gotUncaught(this.consumeString(r.error));
    else r.value.dispose();
  }

  private helper(i: number, ...args: QuickJSHandle[]): QuickJSHandle {
    const r = this.vm.callFunction(this.helpers[i]!, this.vm.undefined, ...args);
    if (r.error) throw r.error; // a thrown handle is rethrown into the guest as is
    return r.value;
  }

  /** String(x) in the guest, then disposes x. */
  private consumeString(h: QuickJSHandle): string {
    try {
      const s = this.helper(0, h);
      try { return this.vm.getString(s); } finally { s.dispose(); }
    } finally {
      h.dispose();
    }
  }

  private guestBytes(bytes: Uint8Array): QuickJSHandle {
    const ab = this.vm.newArrayBuffer(bytes.slice().buffer);
    try { return this.helper(1, ab); } finally { ab.dispose(); }
  }

  /** Copies the bytes of a guest ArrayBuffer view; throws a guest TypeError otherwise. */
  private hostBytes(h: QuickJSHandle | undefined): Uint8Array {
    const ab = this.helper(2, h ?? this.vm.undefined);
    try {
      const view = this.vm.getArrayBuffer(ab);
      try { return view.value.slice(); } finally { view.dispose(); }
    } finally {
      ab.dispose();
    }
  }

  private guestError(range: boolean, message: string): QuickJSHandle {
    const m = this.vm.newString(message);
    try { return this.helper(3, range ? this.vm.true : this.vm.false, m); } finally { m.dispose(); }
  }

  private num(h: QuickJSHandle | undefined): number {
    return h && this.vm.typeof(h) === 'number' ? this.vm.getNumber(h) : Number(h ? this.vm.dump(h) : undefined);
  }

  /** An integer in [0, max], else a guest RangeError (as the C host). */
  private index(h: QuickJSHandle | undefined, max: number, what: string): number {
    const d = this.num(h);
    if (!(d >= 0 && d <= max) || !Number.isInteger(d)) throw this.guestError(true, `bad ${what}`);
    return d;
  }

  private callable(h: QuickJSHandle | undefined, what: string): QuickJSHandle {
    if (!h || this.vm.typeof(h) !== 'function') throw this.guestError(false, `${what} must be a function`);
    return h;
  }

  private memoryUsed(): number {
    return this.memoryUsage().memory_used_size;
  }

  /** QuickJS's JS_ComputeMemoryUsage, the fields read here. */
  private memoryUsage(): Record<'memory_used_size' | 'atom_size' | 'obj_size' | 'prop_size' | 'shape_size' | 'js_func_size' | 'js_func_code_size' | 'js_func_pc2line_size', number> {
    const h = this.rt.computeMemoryUsage();
    try { return this.vm.dump(h); } finally { h.dispose(); }
  }

  private installHal(): void {
    const vm = this.vm;
    const n = (x: number) => vm.newNumber(x);
    const groups: Record<string, Record<string, (...a: QuickJSHandle[]) => QuickJSHandle | void>> = {
      net: {
        open: (a, b, c) => {
          const fns = [this.callable(a, 'net.open: onOpen'), this.callable(b, 'net.open: onData'), this.callable(c, 'net.open: onClose')];
          if (this.halted) return;
          if (this.net) { this.net.onOpen.dispose(); this.net.onData.dispose(); this.net.onClose.dispose(); }
          this.net = { onOpen: fns[0]!.dup(), onData: fns[1]!.dup(), onClose: fns[2]!.dup() };
          this.emit('onOpen');
        },
        send: (b) => {
          const bytes = this.hostBytes(b);
          if (!this.halted) this.emit('onSend', bytes);
        },
        close: () => { if (!this.halted) this.emit('onNetClose'); },
      },
      clock: {
        now: () => n(this.clock),
        setTimer: (f, ms) => {
          const fn = this.callable(f, 'setTimer: fn');
          const delay = this.num(ms);
          const id = this.nextTimerId++;
          if (!this.halted) this.timers.set(id, { due: this.clock + (delay > 0 ? delay : 0), fn: fn.dup() });
          return n(id);
        },
        clearTimer: (h) => {
          const id = this.num(h);
          const t = this.timers.get(id);
          if (t) { t.fn.dispose(); this.timers.delete(id); }
        },
      },
      flash: {
        slotSize: () => n(this.dev.slotSize),
        read: (s, o, l) => {
          const slot = this.index(s, 1, 'slot');
          const off = this.index(o, this.dev.slotSize, 'offset');
          const len = this.index(l, this.dev.slotSize - off, 'length');
          return this.guestBytes(this.dev.slots[slot]!.subarray(off, off + len));
        },
        write: (s, o, b) => {
          const slot = this.index(s, 1, 'slot');
          const offset = this.index(o, this.dev.slotSize, 'offset');
          const bytes = this.hostBytes(b);
          if (bytes.length > this.dev.slotSize - offset) throw this.guestError(true, 'flash.write past the end of the slot');
          if (this.halted) return;
          this.dev.slots[slot]!.set(bytes, offset);
          this.gotFlashOp({ kind: 'write', slot, offset, bytes });
        },
        erase: (s) => {
          const slot = this.index(s, 1, 'slot');
          if (this.halted) return;
          this.dev.slots[slot]!.fill(0xff);
          this.gotFlashOp({ kind: 'erase', slot });
        },
        readBoot: () => (this.dev.boot ? this.guestBytes(this.dev.boot) : vm.null),
        writeBoot: (b) => {
          const record = this.hostBytes(b);
          if (record.length > BOOT_MAX) throw this.guestError(true, `boot record over ${BOOT_MAX} bytes`);
          if (this.halted) return;
          this.dev.boot = record.slice();
          this.gotFlashOp({ kind: 'boot', record });
        },
      },
      system: {
        memoryUsed: () => n(this.memoryUsed()),
        memoryTotal: () => n(this.cap),
        resetReason: () => n(this.options.resetReason ?? 0),
        reset: (reason) => { if (!this.halted) this.gotReset(this.num(reason) || 0); },
        signal: (on) => { if (!this.halted) this.emit('onSignal', Boolean(on && vm.dump(on))); },
        battery: () => n(this.options.battery ?? -1),
        signalStrength: () => n(this.options.signalStrength ?? -1),
        log: (line) => {
          if (this.halted) return;
          const h = this.helper(0, line ?? vm.undefined);
          try { this.gotLog(vm.getString(h)); } finally { h.dispose(); }
        },
      },
    };
    const hal = vm.newObject();
    for (const [group, fns] of Object.entries(groups)) {
      const obj = vm.newObject();
      for (const [name, impl] of Object.entries(fns)) vm.newFunction(name, impl).consume((f) => vm.setProp(obj, name, f));
      vm.setProp(hal, group, obj);
      obj.dispose();
    }
    vm.setProp(vm.global, 'hal', hal);
    hal.dispose();
  }
}
