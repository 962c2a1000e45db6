/**
 * What the bridge does with each message a device publishes, after the hooks
 * accepted it. Called from authorizePublish, so it completes before aedes
 * sends the PUBACK: an acknowledged message is stored. Returns a promise only
 * when there is I/O to wait for, so events pass without a microtask hop.
 */
import { encode, topics, type Message, type SampleValues } from '@flotilla/protocol';
import type { BrokerContext } from './context.js';
import type { DeviceService, Session } from './session.js';
import { payload } from '../telemetry/vitals.js';
import { answeredOps, tally } from '../telemetry/data-ops.js';

/** Particle's special events, published by the bridge for a device (to streams, webhooks and apps). */
export function special(ctx: BrokerContext, deviceId: string, name: string, data: string): void {
  try {
    ctx.publish(topics.device.event(deviceId, name), encode('event', { data, ttl: 60 }), 0);
  } catch (e) {
    // Data past the event limit (a very large vitals report): the stored copy is whole; the event is skipped.
    ctx.log.debug({ err: e, deviceId, name }, 'special event not published');
  }
}

/** A vitals report with what the cloud counts of the session beside it (protocol SERVICE_VITALS). */
function withService(values: SampleValues, service: DeviceService, now: number): SampleValues {
  const out: SampleValues = { ...values, 'service.cloud.uptime': Math.max(0, Math.floor((now - service.since) / 1000)), 'service.cloud.publish.sent': service.events };
  if (service.roundTrip !== null) out['service.coap.round_trip'] = service.roundTrip;
  return out;
}

/** `live`: whether the connection the message came on is still open (a store write may outlast it). */
export function ingest(ctx: BrokerContext, s: Extract<Session, { kind: 'device' }>, msg: Message, live: () => boolean): Promise<void> | undefined {
  const deviceId = s.deviceId;
  switch (msg.kind) {
    case 'hello': {
      const ref = ctx.devices.get(deviceId);
      ctx.subscriptions.set(deviceId, ref?.product.productId ?? '', msg.subscriptions);
      if (ref && ref.firmwareVersion !== msg.firmware) ctx.devices.set(deviceId, { ...ref, firmwareVersion: msg.firmware });
      if (msg.ota.rolledBackFrom === null) ctx.rolledBack.delete(deviceId);
      else ctx.rolledBack.set(deviceId, msg.ota.rolledBackFrom);
      // The handshake is the session's start (Particle's last_handshake_at), not each hello: an app registering a name sends another.
      const facts = { firmware: msg.firmware, variables: msg.variables, functions: msg.functions };
      return ctx.store.recordHello(deviceId, facts, ctx.now(), new Date(s.service.since)).then(() => {
        // Once per boot: the agent says none in the hellos of the same boot after the first the cloud acknowledged.
        if (msg.bootReason !== 'none') special(ctx, deviceId, 'spark/device/last_reset', msg.bootReason);
        ctx.ota?.hello(deviceId, msg, live);
      });
    }
    case 'vitals': {
      const at = ctx.now();
      const values = withService(msg.values, s.service, at.getTime());
      return ctx.store.recordVitals(deviceId, values, at).then(() => {
        special(ctx, deviceId, 'spark/device/diagnostics/update', JSON.stringify(payload(values)));
      });
    }
    case 'error':
      // A crash reported right after a rollback ended the run of the image rolled back from, not of the one
      // the device runs now: filed under it, fleet health shows which release crashes.
      return ctx.store.recordError(deviceId, msg, ctx.now(), msg.source === 'crash' ? (ctx.rolledBack.get(deviceId) ?? null) : null);
    case 'reply': {
      const answered = ctx.requests.reply(deviceId, msg);
      if (answered) s.service.roundTrip = answered.ms;
      const ops = answeredOps(answered?.op ?? null);
      const product = ops > 0 ? ctx.devices.get(deviceId)?.product.productId : undefined;
      if (product !== undefined) tally(ctx.usage, product, Date.now(), { dataOps: ops });
      return undefined;
    }
    case 'otaStatus':
      ctx.ota?.status(deviceId, msg);
      return undefined;
    default:
      // event, status (cloud → device kinds never get here: kindFitsTopic).
      // Events reach subscribers through aedes; presence follows the connection.
      // Nothing to wait for: the hook answers at once.
      return undefined;
  }
}
