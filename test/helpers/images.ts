/** Firmware images for tests: the built agent bundle followed by a small app. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildImage } from '@flotilla/simulator';

export const AGENT_BUNDLE_PATH = fileURLToPath(new URL('../../firmware/dist/agent.js', import.meta.url));

let bundle: string | null = null;
/** The built agent (`npm run build` makes it; `npm test` builds first). */
export function agentBundle(): string {
  if (bundle === null) bundle = readFileSync(AGENT_BUNDLE_PATH, 'utf8');
  return bundle;
}

export interface AppOptions {
  deviceId: string;
  product: number;
  firmware: number;
  secret?: string;
  /** Extra agent options, as a JS object literal's body: `keepalive: 5, trialWindow: 500`. */
  options?: string;
  /** App code run after `var cloud = Flotilla.create(...)`. */
  app?: string;
  /** Bytes of comment appended, to make an image of a given size. */
  padTo?: number;
}

/** The program of an image: agent bundle, then the app, optionally padded. */
export function program(o: AppOptions): string {
  let src =
    agentBundle() +
    '\nvar cloud = Flotilla.create(hal, { deviceId: ' + JSON.stringify(o.deviceId) + ', secret: ' + JSON.stringify(o.secret ?? 'secret') +
    ', product: ' + o.product + ', firmware: ' + o.firmware + (o.options ? ', ' + o.options : '') + ' });\n' + (o.app ?? '') + '\n';
  if (o.padTo && src.length < o.padTo) src += '/*' + 'x'.repeat(o.padTo - src.length - 5) + '*/\n';
  return src;
}

export function image(o: AppOptions): Uint8Array {
  return buildImage(o.product, o.firmware, program(o));
}

/** The demo app most tests run: variables, functions, a subscription, vitals. */
export const DEMO_APP = `
var temp = 21.5;
cloud.variable('temp', function () { return temp; }, 'double');
cloud.variable('name', 'kitchen');
cloud.variable('count', 42);
cloud.variable('on', true);
cloud.variable('bad', function () { throw new Error('getter broke'); }, 'int32');
cloud.fn('setLed', function (arg) { return arg === 'on' ? 1 : 0; });
cloud.fn('boom', function () { throw new Error('kaboom'); });
cloud.fn('noreturn', function () {});
cloud.fn('pub', function (arg) {
  cloud.publish('note/' + arg, 'hello ' + arg, { ack: true }, function (err) {
    cloud.publish('acked', err ? 'error: ' + err.message : 'ok', { ack: false });
  });
  return 1;
});
cloud.fn('setTemp', function (arg) { temp = parseFloat(arg); return 1; });
cloud.subscribe('alert', function (name, data) { cloud.publish('seen', name + '=' + data); });
cloud.after(50, function () { throw new Error('timer broke'); });
`;
