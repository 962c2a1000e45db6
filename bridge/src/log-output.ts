/**
 * Where the bridge's log lines go: a file descriptor (standard output),
 * written synchronously, line by line.
 *
 * Not pino's default (sonic-boom): once its reader is gone
 * (`flotilla-bridge | head`), it retried a write that failed with EPIPE
 * forever, sleeping between tries on the main thread: the bridge served
 * nothing and ignored SIGTERM. Here a closed output is reported once and
 * nothing more is written to it.
 */
import { writeSync } from 'node:fs';

export interface LogOutput {
  write(line: string): void;
}

/** How long a line waits, at most, for a reader that is slow (EAGAIN on a non-blocking pipe) before it is dropped. */
const BUSY_WAIT_MS = 100;

export function fdLogOutput(fd: number, onClosed: () => void = () => {}): LogOutput {
  let closed = false;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  return {
    write(line) {
      if (closed) return;
      let data = Buffer.from(line);
      const until = Date.now() + BUSY_WAIT_MS;
      while (data.length > 0) {
        try {
          data = data.subarray(writeSync(fd, data));
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'EAGAIN' && Date.now() < until) {
            Atomics.wait(pause, 0, 0, 1);
            continue;
          }
          if (code === 'EAGAIN') return; // a reader this slow loses the line, not the bridge its event loop
          closed = true; // EPIPE, EBADF, ...: the output is gone
          onClosed();
          return;
        }
      }
    },
  };
}
