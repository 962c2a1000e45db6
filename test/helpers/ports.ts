/** Loopback ports for tests. */
import { createServer, type AddressInfo } from 'node:net';

/** A loopback port with nothing listening (a connect is refused at once; fetch refuses "bad" ports such as 1 before trying). */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
