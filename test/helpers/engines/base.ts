/**
 * What both hosts share: listeners, the flash journal, logs, and a command
 * queue that runs one engine entry at a time in call order (a listener may
 * call back into the host; its call is queued, never re-entered).
 */
import { FlashJournal } from './flash.js';
import type { EngineListener, EngineName, EngineOptions, FlashOp, FlashState } from './types.js';

type ListenerArgs<K extends keyof EngineListener> = Parameters<NonNullable<EngineListener[K]>>;

export abstract class HostBase {
  abstract readonly name: EngineName;
  readonly logs: string[] = [];
  readonly uncaught: string[] = [];
  readonly options: Readonly<EngineOptions>;
  protected readonly journal: FlashJournal;
  protected closed = false;
  protected halted = false;
  protected clock = 0;
  private readonly listeners = new Set<EngineListener>();
  private queue: Promise<unknown> = Promise.resolve();
  private listenerError: { error: unknown } | null = null;

  constructor(options: EngineOptions) {
    this.options = { ...options };
    this.journal = new FlashJournal(options.flash);
    this.listeners.add(options);
  }

  get flashOps(): readonly FlashOp[] {
    return this.journal.ops;
  }
  get isReset(): boolean {
    return this.halted;
  }
  get now(): number {
    return this.clock;
  }

  flash(): FlashState {
    return this.journal.current();
  }
  flashAfter(k: number): FlashState {
    return this.journal.after(k);
  }

  listen(listener: EngineListener): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Calls every listener; a throw is kept and fails the command in progress. */
  protected emit<K extends keyof EngineListener>(key: K, ...args: ListenerArgs<K>): void {
    for (const l of [...this.listeners]) {
      const f = l[key] as ((...a: ListenerArgs<K>) => void) | undefined;
      if (!f) continue;
      try {
        f.apply(l, args);
      } catch (error) {
        this.listenerError ??= { error };
      }
    }
  }

  protected gotLog(line: string): void {
    this.logs.push(line);
    this.emit('onLog', line);
  }
  protected gotUncaught(message: string): void {
    this.uncaught.push(message);
    this.emit('onUncaught', message);
  }
  protected gotFlashOp(op: FlashOp): void {
    const index = this.journal.record(op);
    this.emit('onFlashOp', this.journal.ops[index - 1]!, index);
  }
  /** The reason the program gave (a RESET_REASONS code); what the next boot's resetReason() returns. */
  resetReason = 0;
  protected gotReset(reason: number): void {
    this.halted = true;
    this.resetReason = reason;
    this.emit('onReset', reason);
  }

  /** Runs `fn` after every earlier command; rejects once the host is closed. */
  protected serial<T>(what: string, fn: () => Promise<T> | T): Promise<T> {
    const p = this.queue.then(async () => {
      if (this.closed) throw new Error(`${this.name}: ${what} after close`);
      const result = await fn();
      const le = this.listenerError;
      this.listenerError = null;
      if (le) throw le.error;
      return result;
    });
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Resolves when every queued command has settled. */
  protected drained(): Promise<void> {
    return this.queue.then(() => undefined);
  }
}

export function checkTick(ms: number): void {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`tick(${ms}): ms must be a finite number >= 0`);
}
