/**
 * What bench/api.ts (the load generator) and bench/api-server.ts (the server
 * under test, in its own process) agree on: the devices' variable and
 * function, the payloads, and the messages between the two processes.
 *
 * Device ids and secrets are bench/broker-common.ts's (benchDeviceId, benchSecret).
 */
import type { Messages } from '@flotilla/protocol';

/** The one function every benchmark device declares; it returns CALL_RETURN. */
export const FUNCTION = 'setLevel';
/** Its argument, sent as {"arg": ...} over HTTP and carried in the request's `arg` (32 bytes). */
export const ARG = 'level=42;ramp=250ms;color=ff8800';
export const CALL_RETURN = 1;
/** The one variable every benchmark device declares (a double). */
export const VARIABLE = 'temp';
export const VAR_VALUE = 21.5;

/** The hello every benchmark device sends first: the bridge records its variable and function from it. */
export const HELLO: Messages['hello'] = {
  agent: '0.1.0',
  firmware: 1,
  product: 1000,
  variables: [{ name: VARIABLE, type: 'double' }],
  functions: [FUNCTION],
  subscriptions: [],
  bootReason: 'power_down',
  ota: { slot: 0, trial: false, rolledBackFrom: null },
};

/** Client id of the anchor's requester on bare aedes. */
export const REQUESTER_CLIENT_ID = 'bench-requester';

/** Parent → server process. */
export type ServerRequest =
  | { id: number; op: 'cpu' }
  /** Bridge only: how many of the benchmark devices the store has online, with the function and the variable. */
  | { id: number; op: 'devicesReady'; n: number }
  | { id: number; op: 'exit' };

/** Server process → parent. */
export type ServerReply =
  | {
      op: 'ready';
      mqttPort: number;
      httpPort: number | null;
      token: string | null;
      startupMs: number;
      provisionMs: number;
      /** Bridge: its default per-token request limit, and whether the benchmark lifted it. */
      requestLimit: { limit: number; windowMs: number; lifted: boolean } | null;
    }
  | { op: 'error'; message: string }
  | { id: number; op: 'cpu'; userMs: number; systemMs: number }
  | { id: number; op: 'devicesReady'; ready: number; online: number }
  | { id: number; op: 'exit' };
