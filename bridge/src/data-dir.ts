/**
 * The data directory's secrets (the database, with password, token and secret
 * hashes; the TLS private keys) are their owner's alone. New ones are made
 * so; this tightens those an older bridge, a copy or an umask left readable
 * to others.
 */
import { chmodSync, linkSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The secret files under `dataDir`: the database and its WAL files, every private key under tls/. */
function secrets(dataDir: string): string[] {
  const out = ['flotilla.db', 'flotilla.db-wal', 'flotilla.db-shm'].map((f) => join(dataDir, f));
  const walk = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // no tls/ yet
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.isFile() && e.name.endsWith('.key')) out.push(join(dir, e.name));
    }
  };
  walk(join(dataDir, 'tls'));
  return out;
}

/** Removes group and other access from every secret file that has any; returns the files changed. */
export function ownerOnly(dataDir: string): string[] {
  const changed: string[] = [];
  for (const file of secrets(dataDir)) {
    let mode: number;
    try {
      mode = statSync(file).mode;
    } catch {
      continue; // not there (yet)
    }
    if ((mode & 0o077) === 0) continue;
    chmodSync(file, mode & 0o700);
    changed.push(file);
  }
  return changed;
}

/** Another bridge holds the data directory (its pid file names a live process, or this process holds it). */
export class DataDirInUse extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(`another bridge (pid ${pid}) uses the data directory ${dataDir}: stop it first, or remove ${join(dataDir, PID_FILE)} if no such bridge runs`);
    this.name = 'DataDirInUse';
  }
}

const PID_FILE = 'bridge.pid';
/** Data directories this process holds: a second bridge in one process is refused too. */
const held = new Set<string>();

/** Whether `pid` is a live process that may be a bridge (a Node process, where /proc says; a reused pid of a shell is not). */
function aliveBridge(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false; // EPERM: someone else's process, alive
  }
  try {
    return /node|flotilla/i.test(readFileSync(`/proc/${pid}/cmdline`, 'latin1'));
  } catch {
    return true; // no /proc here: alive is all we know
  }
}

/** Creates `file` holding this process's pid, atomically (never empty to a reader): false when it exists. */
function createPidFile(file: string): boolean {
  const tmp = file + '.' + process.pid;
  writeFileSync(tmp, String(process.pid) + '\n', { mode: 0o600 });
  try {
    linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * Takes the data directory for this bridge, as PostgreSQL's postmaster.pid does: one bridge per
 * directory. Two on one file agree on nothing held in memory (webhooks, presence, rollouts, the
 * sessions a revoked token must end), so a second one is refused. A pid file naming a process that
 * is gone (a killed bridge) is taken over. Release it at close.
 */
export function holdDataDir(dataDir: string): { release(): void } {
  const dir = resolve(dataDir);
  const file = join(dir, PID_FILE);
  if (held.has(dir)) throw new DataDirInUse(dataDir, process.pid);
  // Twice at most: a stale file (its bridge gone) is removed and the creation tried again; of two bridges
  // doing that at once, the link lets one win and the other then reads the winner's pid.
  for (let attempt = 0; !createPidFile(file); attempt++) {
    let pid = NaN;
    try {
      pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
    } catch {
      continue; // removed meanwhile: try again
    }
    // Not a pid, this process's own (it does not hold the directory: held says so), or no live bridge's.
    const stale = !(Number.isSafeInteger(pid) && pid > 0) || pid === process.pid || !aliveBridge(pid);
    if (!stale || attempt > 0) throw new DataDirInUse(dataDir, Number.isSafeInteger(pid) ? pid : 0);
    rmSync(file, { force: true });
  }
  held.add(dir);
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      held.delete(dir);
      try {
        if (Number.parseInt(readFileSync(file, 'utf8'), 10) === process.pid) rmSync(file);
      } catch {
        // gone already
      }
    },
  };
}
