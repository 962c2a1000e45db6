/**
 * A bare aedes broker on a loopback port, for tests of the agent before (and
 * beside) the bridge. Sockets with NODELAY, as the bridge's: Nagle plus
 * delayed ACK would add 40 ms to every QoS 1 exchange.
 */
import { createServer, Server, Socket } from 'node:net';
import { Aedes } from 'aedes';

export interface TestBroker {
  aedes: Aedes;
  port: number;
  /** Sockets of connected clients, to cut links on purpose. */
  sockets: Set<Socket>;
  close(): Promise<void>;
}

export async function startBroker(opts: Parameters<typeof Aedes.createBroker>[0] = {}): Promise<TestBroker> {
  const aedes = await Aedes.createBroker(opts);
  const sockets = new Set<Socket>();
  const server: Server = createServer({ noDelay: true }, (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    aedes.handle(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    aedes,
    port,
    sockets,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    },
  };
}
