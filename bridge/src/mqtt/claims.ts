/**
 * A device presenting a claim code (CLAIM_CODE_EVENT, customers/claims.ts):
 * decided, spent and audited here; the event itself goes nowhere else (the
 * code is a secret until spent). The device's access in memory follows at
 * once, so the claimant's streams and subscriptions see it from now on.
 */
import { CLAIM_CODE_EVENT, parseTopic, type Message } from '@flotilla/protocol';
import { claimVerdict } from '../customers/claims.js';
import { decide } from '../policy/decide.js';
import type { BrokerContext } from './context.js';

/** Whether a topic carries a claim code (kept off the bus's listeners and subscribers). */
export function isClaimTopic(topic: string): boolean {
  if (!topic.endsWith(CLAIM_CODE_EVENT)) return false;
  try {
    const t = parseTopic(topic);
    return t.root === 'dev' && t.channel === 'evt' && t.event === CLAIM_CODE_EVENT;
  } catch {
    return false;
  }
}

export async function presentClaimCode(ctx: BrokerContext, deviceId: string, msg: Message): Promise<void> {
  const audit = (allowed: boolean, reason: string, actorKind = 'device', actorId = deviceId) =>
    ctx.store.audit({ at: ctx.now(), actorKind, actorId, action: 'device.claim', resourceKind: 'device', resourceId: deviceId, allowed, status: allowed ? 200 : 403, reason });
  if (msg.kind !== 'event' || typeof msg.data !== 'string' || msg.data === '') return audit(false, 'a claim code event without a code');
  const [code, ref] = await Promise.all([ctx.store.findClaimCode(msg.data), ctx.store.deviceAccess(deviceId)]);
  if (!ref) return;
  let userMayAdd = false;
  if (code?.claimant.kind === 'user') {
    const actor = { kind: 'user' as const, userId: code.claimant.id, memberships: await ctx.store.memberships(code.claimant.id) };
    userMayAdd = decide(actor, 'device.add', { kind: 'device', deviceId, product: ref.product, customerId: ref.customerId }).allow;
  }
  const verdict = claimVerdict(code, deviceId, { productId: Number(ref.product.productId), customerId: ref.customerId, ownerUserId: ref.ownerUserId }, ctx.now(), userMayAdd);
  if (!verdict.ok) {
    if (verdict.already) return;
    ctx.log.info({ deviceId, reason: verdict.reason }, 'mqtt: claim code refused');
    return audit(false, verdict.reason);
  }
  const claimant = code!.claimant;
  if (!(await ctx.store.spendClaimCode(msg.data, deviceId))) return audit(false, 'the claim code was spent, or the device taken, meanwhile');
  const now = await ctx.store.deviceAccess(deviceId);
  if (now) ctx.devices.set(deviceId, now);
  await audit(true, 'claimed by ' + claimant.kind + ' ' + claimant.id + ' with a claim code', claimant.kind, claimant.id);
}
