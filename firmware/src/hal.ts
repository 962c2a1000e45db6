/**
 * The hardware abstraction layer: everything the agent needs from outside the
 * JavaScript engine, injected as one object. The agent touches no global but
 * the ES5 builtins; each host (the simulator's Node HAL, the QuickJS and
 * Duktape test hosts, a real board's port) implements this interface.
 *
 * All calls are synchronous and callbacks are plain functions: the target
 * engines have no Promise (Duktape, Espruino).
 */
export interface Hal {
  net: HalNet;
  clock: HalClock;
  flash: HalFlash;
  system: HalSystem;
}

/** One stream link to the cloud (TCP or TLS, chosen by the host). */
export interface HalNet {
  /**
   * Opens the link. Later, exactly one of: `onOpen()` then any number of
   * `onData(chunk)` then one `onClose()`; or `onClose()` alone when the
   * connect fails. Chunks split and join MQTT packets arbitrarily.
   */
  open(onOpen: () => void, onData: (chunk: Uint8Array) => void, onClose: () => void): void;
  /** Queues bytes on the open link (ignored when closed). */
  send(bytes: Uint8Array): void;
  /**
   * Closes the link after the bytes already given to `send` have gone out
   * (a DISCONNECT must reach the broker, or it publishes the will); `onClose`
   * follows, possibly synchronously. A host may give up on a peer that does
   * not take the bytes within a second. Called while the connect is still
   * under way (the agent gives one up after 10 s), it aborts it: `onClose` follows.
   */
  close(): void;
}

export interface HalClock {
  /** Milliseconds since boot, monotonic. */
  now(): number;
  /** One-shot timer; returns an id for clearTimer. */
  setTimer(fn: () => void, ms: number): number;
  clearTimer(id: number): void;
}

/**
 * Two application slots plus a small boot record, as on an MCU with A/B
 * flash banks. A write has persisted when it returns; a power cut between two
 * writes keeps the first. `writeBoot` replaces the whole record atomically
 * (real boards keep two copies with a sequence number).
 */
export interface HalFlash {
  /** Capacity of one slot in bytes. */
  slotSize(): number;
  read(slot: number, offset: number, length: number): Uint8Array;
  write(slot: number, offset: number, bytes: Uint8Array): void;
  /** Erases a whole slot (to 0xff). */
  erase(slot: number): void;
  /** The boot record, or null on a fresh device. */
  readBoot(): Uint8Array | null;
  writeBoot(record: Uint8Array): void;
}

export interface HalSystem {
  /** Heap in use and heap size in bytes, as the engine or allocator reports them. */
  memoryUsed(): number;
  memoryTotal(): number;
  /** Particle's reset reason code of this boot (RESET_REASONS). */
  resetReason(): number;
  /**
   * Resets the device; `reason` (a RESET_REASONS code: 70 update, 90
   * update_timeout, 140 user) is what the next boot's resetReason() returns.
   * Does not return on hardware; a host tears the engine down after it.
   */
  reset(reason: number): void;
  /** Starts (true) or stops signaling, Particle's rainbow LED. */
  signal(on: boolean): void;
  /** Battery charge 0..100, or -1 when the board has no battery gauge. */
  battery(): number;
  /** Signal strength 0..100, or -1 when unknown. */
  signalStrength(): number;
  /** A line of diagnostics for the host's log. */
  log(line: string): void;
}
