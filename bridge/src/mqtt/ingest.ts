/**
 * What the bridge does with each message a device publishes, after the hooks
 * accepted it. Called from authorizePublish, so it completes before aedes
 * sends the PUBACK: an acknowledged message is stored. Returns a promise only
 * when there is I/O to wait for, so events pass without a microtask hop.
 */
import type { Message } from '@flotilla/protocol';
import type { BrokerContext } from './context.js';

export function ingest(ctx: BrokerContext, deviceId: string, msg: Message): Promise<void> | undefined {
  switch (msg.kind) {
    case 'hello':
      ctx.subscriptions.set(deviceId, msg.subscriptions);
      return ctx.store.recordHello(deviceId, { firmware: msg.firmware, variables: msg.variables, functions: msg.functions }, ctx.now());
    case 'vitals':
      return ctx.store.recordVitals(deviceId, msg.values, ctx.now());
    case 'error':
      return ctx.store.recordError(deviceId, msg, ctx.now());
    case 'reply':
      ctx.requests.reply(deviceId, msg);
      return undefined;
    default:
      // event, status, otaStatus (cloud → device kinds never get here: kindFitsTopic).
      // Events reach subscribers through aedes; presence follows the connection;
      // OTA status is the rollout's (issue 7). Nothing to wait for: the hook answers at once.
      return undefined;
  }
}
