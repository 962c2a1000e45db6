/**
 * Which new MQTT connections the broker takes, before a byte is read: at most
 * `maxConnections` in all, so that connections alone cannot take the last
 * file descriptors (SQLite, the HTTP API and image files need theirs: 21,000
 * idle connections exhausted a limit of 20,000 before, with nothing logged);
 * and at most `maxPendingPerAddress` from one address that have not yet been
 * accepted by CONNECT, since those cost nothing to open and last until the
 * CONNECT timeout. Devices behind one NAT share an address, so a connection
 * stops counting against its address once its CONNECT is accepted. An IPv6
 * address counts by its /64 (one host is given a whole /64). Pure bookkeeping:
 * the broker turns a refusal into a closed socket and a log line.
 */
import { readFileSync } from 'node:fs';
import { addressKey } from '../identity/address.js';

export interface AdmissionLimits {
  /** Connections at once, all listeners; null for no limit. */
  maxConnections: number | null;
  /** Connections from one address (an IPv6 /64) whose CONNECT has not been accepted yet. */
  maxPendingPerAddress: number;
}

export type Refusal = 'full' | 'address';

/** One admitted connection. Both calls are safe to repeat. */
export interface Ticket {
  /** Its CONNECT was accepted: it no longer counts against its address. */
  accepted(): void;
  /** It closed. */
  release(): void;
}

export class Admission {
  private open = 0;
  private readonly pending = new Map<string, number>();

  constructor(private readonly limits: AdmissionLimits) {}

  admit(address: string | undefined): Ticket | Refusal {
    if (this.limits.maxConnections !== null && this.open >= this.limits.maxConnections) return 'full';
    const key = addressKey(address ?? '');
    const waiting = this.pending.get(key) ?? 0;
    if (waiting >= this.limits.maxPendingPerAddress) return 'address';
    this.open++;
    this.pending.set(key, waiting + 1);
    let isPending = true;
    let isOpen = true;
    const unpend = () => {
      if (!isPending) return;
      isPending = false;
      const n = (this.pending.get(key) ?? 1) - 1;
      if (n > 0) this.pending.set(key, n);
      else this.pending.delete(key);
    };
    return {
      accepted: unpend,
      release: () => {
        unpend();
        if (!isOpen) return;
        isOpen = false;
        this.open--;
      },
    };
  }

  /** Connections open now (for tests and metrics). */
  get size(): number {
    return this.open;
  }
}

/**
 * The default for maxConnections: the process's open-file limit (Node raises
 * its soft limit to the hard one at start) less a reserve for everything else
 * (the database, HTTP clients, image files, logs); null where the limit
 * cannot be read (not Linux).
 */
export function connectionsFromFileLimit(reserve = 1024, limitsFile = '/proc/self/limits'): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(limitsFile, 'utf8'));
    if (!m || m[1] === 'unlimited') return null;
    // A tenth kept back, and at least `reserve` where that leaves most of the limit (a quarter of a small one).
    const limit = Number(m[1]);
    return limit - Math.max(Math.ceil(limit * 0.1), Math.min(reserve, Math.ceil(limit / 4)));
  } catch {
    return null;
  }
}
