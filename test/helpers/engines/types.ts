/**
 * The one interface every engine host implements, so a test runs the same
 * JavaScript program on each real embedded engine with Node servicing the HAL.
 */

export type EngineName = 'quickjs' | 'duktape';

// Flash state and its operations are the simulator's: one definition for every host.
import type { FlashOp, FlashState } from '@flotilla/simulator';
export type { FlashOp, FlashState };

/** What a program did through the HAL; every member optional. */
export interface EngineListener {
  /** The program called hal.net.open (answer with netOpened or netClosed). */
  onOpen?(): void;
  onSend?(bytes: Uint8Array): void;
  /** The program called hal.net.close (answer with netClosed). */
  onNetClose?(): void;
  /** A persisted flash op; `index` counts from 1, so flashAfter(index) includes it. */
  onFlashOp?(op: FlashOp, index: number): void;
  onLog?(line: string): void;
  /** An exception escaped a callback or timer; the engine keeps running. */
  onUncaught?(message: string): void;
  /** The program called hal.system.reset(reason); the engine is halted. */
  onReset?(reason: number): void;
  onSignal?(on: boolean): void;
}

export interface EngineOptions extends EngineListener {
  flash: FlashState;
  /** Particle reset reason code reported by hal.system.resetReason(); default 0. */
  resetReason?: number;
  /** Heap cap in bytes (Duktape: hard allocator cap; QuickJS: memoryTotal, coarse guard). Default 512 KiB. */
  heapCap?: number;
  /** Duktape only: Debian's configuration as packaged (default), or the low-memory options a board port would use. */
  duktapeConfig?: 'debian' | 'low-memory';
  /** Default -1 (no gauge). */
  battery?: number;
  /** Default -1 (unknown). */
  signalStrength?: number;
  /** Longest a single command may run before the host is considered hung. Default 15 s. */
  commandTimeoutMs?: number;
}

export interface MemoryInfo {
  /** Bytes in use after garbage collection. */
  used: number;
  /** Highest bytes in use since start, when the engine tracks it (Duktape). */
  peak?: number;
  /** The cap, as hal.system.memoryTotal() reports it. */
  total: number;
  /**
   * Where the bytes are, by the engine's own counters, when it keeps them
   * (QuickJS's JS_ComputeMemoryUsage): bytes per kind of allocation.
   */
  parts?: EngineMemoryParts;
}

/** QuickJS's counters. `functions` holds each function's record with its source text and variable tables; `bytecode` and `lineTables` are apart. */
export interface EngineMemoryParts {
  atoms: number;
  objects: number;
  functions: number;
  bytecode: number;
  lineTables: number;
}

export interface EngineHost {
  readonly name: EngineName;
  /** Pointer width the engine runs with (Duktape -m32: 32, native: 64; QuickJS wasm32: 32). */
  readonly bits: number;
  /** A one-line description of the engine build. */
  readonly info: string;
  /** Every hal.system.log line and uncaught message so far. */
  readonly logs: readonly string[];
  readonly uncaught: readonly string[];
  /** Every persisted flash op so far, in order. */
  readonly flashOps: readonly FlashOp[];
  /** True once the program called hal.system.reset(); the host then runs no more JS callbacks. */
  readonly isReset: boolean;
  /** The virtual clock (ms since boot) as Node advanced it. */
  readonly now: number;
  readonly options: Readonly<EngineOptions>;

  /** Evaluates a program; rejects with EngineError on a syntax error or a throw. */
  run(source: string, filename?: string): Promise<void>;
  /** The link opened: calls the program's onOpen. */
  netOpened(): Promise<void>;
  /** Bytes arrived: calls the program's onData with a Uint8Array copy. */
  netData(bytes: Uint8Array): Promise<void>;
  /** The link closed: calls the program's onClose once and forgets the callbacks. */
  netClosed(): Promise<void>;
  /** Advances the virtual clock, running due timers in (due, creation) order. */
  tick(ms: number): Promise<void>;
  /** Memory after a full garbage collection. */
  memory(): Promise<MemoryInfo>;
  /** Evaluates an expression in the global scope; resolves String(result), rejects with EngineError. */
  evaluate(js: string): Promise<string>;
  /** Node's exact mirror of the device flash after every reported op (a copy). */
  flash(): FlashState;
  /** The mirror after the first k ops (k = 0: the boot state): a power cut after the k-th persisted write. */
  flashAfter(k: number): FlashState;
  /** The flash as the engine side holds it (for checking the mirror). */
  deviceFlash(): Promise<FlashState>;
  /** Adds a listener; returns a function that removes it. */
  listen(listener: EngineListener): () => void;
  /** Tears the engine down; idempotent. Pending commands reject. */
  close(): Promise<void>;
}

/** A syntax error or exception reported by the engine for run/evaluate. */
export class EngineError extends Error {
  constructor(readonly engine: EngineName, message: string) {
    super(message);
    this.name = 'EngineError';
  }
}

export const DEFAULT_HEAP_CAP = 512 * 1024;
export const DEFAULT_COMMAND_TIMEOUT_MS = 15_000;
/** Largest boot record either host accepts (a real board keeps it in one small sector). */
export const BOOT_MAX = 4096;
