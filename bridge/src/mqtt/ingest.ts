/**
 * What the bridge does with each message a device publishes, after the hooks
 * accepted it. Called from authorizePublish, so it completes before aedes
 * sends the PUBACK: an acknowledged message is stored.
 */
import type { Message } from '@flotilla/protocol';
import type { BrokerContext } from './context.js';

export async function ingest(ctx: BrokerContext, deviceId: string, msg: Message): Promise<void> {
  const at = ctx.now();
  switch (msg.kind) {
    case 'hello':
      await ctx.store.recordHello(deviceId, { firmware: msg.firmware, variables: msg.variables, functions: msg.functions }, at);
      return;
    case 'vitals':
      await ctx.store.recordVitals(deviceId, msg.values, at);
      return;
    case 'error':
      await ctx.store.recordError(deviceId, msg, at);
      return;
    case 'reply':
      ctx.requests.reply(deviceId, msg);
      return;
    case 'event':
    case 'status':
    case 'otaStatus':
      // Events reach subscribers through aedes; presence follows the connection;
      // OTA status is the rollout's (issue 7).
      return;
  }
}
