/** The file an upload or flash sends: checked here so a typo is reported as such, not as a network error. */
import { stat } from 'node:fs/promises';
import { Failure } from './command.js';

export async function readableFile(path: string): Promise<void> {
  let s;
  try {
    s = await stat(path);
  } catch (e) {
    throw new Failure(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  if (!s.isFile()) throw new Failure(`${path} is not a file`);
  if (s.size === 0) throw new Failure(`${path} is empty`);
}
