/**
 * A real-time clock pump: advances an engine's virtual clock by the real time
 * elapsed, every ~10 ms, so a program talking to a real broker sees time pass.
 * Stop it to take over with explicit tick() fast-forwards.
 */
import type { EngineHost } from './types.js';

export interface ClockPump {
  readonly running: boolean;
  /** Stops the pump and waits for its last tick to finish. Idempotent. */
  stop(): Promise<void>;
}

export function startClockPump(engine: EngineHost, intervalMs = 10): ClockPump {
  let last = performance.now();
  let owed = 0; // whole ms still to hand over; fractions carry to the next round
  let inFlight: Promise<void> | null = null;
  let running = true;
  const errors: unknown[] = [];
  const timer = setInterval(() => {
    const t = performance.now();
    owed += t - last;
    last = t;
    if (inFlight || owed < 1) return; // a slow tick: time keeps accruing meanwhile
    const ms = Math.floor(owed);
    owed -= ms;
    inFlight = engine.tick(ms).catch((e: unknown) => void errors.push(e)).finally(() => { inFlight = null; });
  }, intervalMs);
  timer.unref(); // a safety net only: tests stop pumps explicitly
  return {
    get running() { return running; },
    async stop() {
      running = false;
      clearInterval(timer);
      await inFlight;
    },
  };
}
