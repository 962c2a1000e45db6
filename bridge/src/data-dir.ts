/**
 * The data directory's secrets (the database, with password, token and secret
 * hashes; the TLS private keys) are their owner's alone. New ones are made
 * so; this tightens those an older bridge, a copy or an umask left readable
 * to others.
 */
import { chmodSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

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
