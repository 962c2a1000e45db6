/**
 * Firmware benchmark: bundle size, and the heap the agent adds on each real
 * engine (after load, after a session with a 64 KB OTA), beside the budgets of
 * issue 3 and the Photon's RAM. Prints a table; asserts nothing.
 *
 *   npm run bench -w firmware
 */
import { gzipSync } from 'node:zlib';
import { parse } from 'acorn';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ENGINES, emptyFlash, startEngine, type EngineName } from '../test/helpers/engines/index.js';
import type { EngineMemoryParts } from '../test/helpers/engines/types.js';
import { EngineDevice } from '../test/helpers/engine-device.js';
import { startBroker } from '../test/helpers/broker.js';
import { TestCloud } from '../test/helpers/test-cloud.js';
import { image } from '../test/helpers/images.js';
import { sendImage } from '../test/helpers/ota-sender.js';

const BUNDLE = fileURLToPath(new URL('../firmware/dist/agent.js', import.meta.url));
const PRODUCT = 7;
/** The app measured: what a small product registers. */
const APP = `
var t = 21.5;
cloud.variable('temp', function () { return t; }, 'double');
cloud.variable('name', 'kitchen');
cloud.fn('setLed', function (a) { return a === 'on' ? 1 : 0; });
cloud.subscribe('alert', function (n, d) {});
`;
/** Budgets of issue 3, and the RAM a Photon leaves to user code. */
const BUDGET = { min: 16 * 1024, gzip: 6 * 1024, duktape: 48 * 1024, quickjs: 56 * 1024, photon: 38 * 1024 };

interface Heap { base: number; loaded: number; afterOta: number; bits: number; parts?: EngineMemoryParts }

async function heap(engine: EngineName, duktapeConfig?: 'low-memory'): Promise<Heap> {
  // The engine with the HAL and nothing else.
  const bare = await startEngine(engine, { flash: emptyFlash(1024), duktapeConfig });
  await bare.run('var x = 0;');
  const bareMemory = await bare.memory();
  const base = bareMemory.used;
  const bits = bare.bits;
  await bare.close();

  const broker = await startBroker();
  const cloud = await TestCloud.connect(broker.port);
  const id = 'c0ffee' + engine.length.toString(16).padStart(18, '0');
  const flash = emptyFlash(160 * 1024);
  flash.slots[0].set(image({ deviceId: id, product: PRODUCT, firmware: 1, app: APP, options: 'keepalive: 30' }));
  const d = new EngineDevice(engine, flash, { port: broker.port, duktapeConfig });
  try {
    await d.start();
    await cloud.kind(id, 'hello', 10000);
    await cloud.kind(id, 'vitals', 10000);
    const loadedMemory = await d.engine!.memory();
    const loaded = loadedMemory.used;
    // A whole 64 KB transfer and SHA-256 check; the announced hash is wrong so the
    // device stays up afterwards to be measured.
    const v2 = image({ deviceId: id, product: PRODUCT, firmware: 2, app: APP, padTo: 64 * 1024 });
    const s = await sendImage(cloud, id, v2, { job: 1, product: PRODUCT, version: 2, chunkSize: 1024, window: 4, sha256: new Uint8Array(32) });
    if (s.reason !== 'bad_sha') throw new Error('unexpected OTA outcome ' + s.state + ' ' + s.reason);
    await cloud.request(id, { op: 'ping' });
    const afterOta = (await d.engine!.memory()).used;
    const b = bareMemory.parts;
    const l = loadedMemory.parts;
    // What the agent added, by the engine's counters.
    const parts = b && l ? (Object.fromEntries(Object.keys(l).map((k) => [k, l[k as keyof EngineMemoryParts] - b[k as keyof EngineMemoryParts]])) as unknown as EngineMemoryParts) : undefined;
    return { base, loaded: loaded - base, afterOta: afterOta - base, bits, parts };
  } finally {
    await d.stop();
    await cloud.close();
    await broker.close();
  }
}

const kb = (n: number) => (n / 1024).toFixed(1) + ' KB';
const code = readFileSync(BUNDLE);
const rows: [string, string, string, string][] = [
  ['bundle, minified', kb(code.length), kb(BUDGET.min), code.length <= BUDGET.min ? 'within' : 'over by ' + kb(code.length - BUDGET.min)],
  ['bundle, gzip -9', kb(gzipSync(code, { level: 9 }).length), kb(BUDGET.gzip), gzipSync(code, { level: 9 }).length <= BUDGET.gzip ? 'within' : 'over by ' + kb(gzipSync(code, { level: 9 }).length - BUDGET.gzip)],
];
// Function objects cost ~300 B of heap each on both engines, whatever their body
// (measured: 100 two-line functions +29 to +34 KB, the same statements in one function +3 to +4 KB).
/** Every function in `source`: its nesting depth (0 outermost) and its length in characters. */
function functionSpans(source: string): { depth: number; length: number }[] {
  const out: { depth: number; length: number }[] = [];
  (function walk(n: unknown, depth: number): void {
    if (Array.isArray(n)) return n.forEach((x) => walk(x, depth));
    if (!n || typeof n !== 'object') return;
    const node = n as { type?: string; start: number; end: number };
    if (/Function/.test(node.type ?? '')) out.push({ depth: depth++, length: node.end - node.start });
    for (const [k, v] of Object.entries(n)) if (k !== 'type') walk(v, depth);
  })(parse(source, { ecmaVersion: 5 }), 0);
  return out;
}
const bundleFunctions = functionSpans(code.toString('utf8'));
const functions = bundleFunctions.length;
/**
 * Characters of source text QuickJS keeps for the functions alive after load
 * (each function holds its own text, for Function.prototype.toString): every
 * function of the bundle but the wrapper that runs once, and the app's.
 */
const keptSource = [...bundleFunctions.filter((f) => f.depth > 0), ...functionSpans(APP)].reduce((n, f) => n + f.length, 0);
rows.push(['functions in the bundle', String(functions), '-', '~' + Math.round((functions * 310) / 1024) + ' KB of heap as function objects']);
const parts: [string, EngineMemoryParts, number][] = [];
// The engines as the tests run them, and Duktape with the low-memory options a board port would use.
const runs: [EngineName, 'low-memory' | undefined][] = [...ENGINES.map((e) => [e, undefined] as [EngineName, undefined]), ['duktape', 'low-memory']];
for (const [engine, config] of runs) {
  const h = await heap(engine, config);
  const budget = engine === 'duktape' ? BUDGET.duktape : BUDGET.quickjs;
  const label = engine === 'duktape' ? 'Duktape ' + h.bits + '-bit' + (config ? ' low-memory' : '') : 'QuickJS wasm' + h.bits;
  rows.push([label + ': engine + HAL alone', kb(h.base), '-', '']);
  rows.push([label + ': agent heap after load', kb(h.loaded), kb(budget), h.loaded <= budget ? 'within' : 'over by ' + kb(h.loaded - budget)]);
  rows.push([label + ': agent heap after 64 KB OTA session', kb(h.afterOta), kb(budget), h.afterOta <= budget ? 'within' : 'over by ' + kb(h.afterOta - budget)]);
  rows.push([label + ': vs Photon user RAM', kb(h.loaded), kb(BUDGET.photon), h.loaded <= BUDGET.photon ? 'fits' : 'short by ' + kb(h.loaded - BUDGET.photon)]);
  if (h.parts) {
    // This QuickJS build keeps source text and line tables and has no switch to drop them; a device
    // build does (qjsc -s, JS_SetStripInfo): computed from its counters, not measured.
    const stripped = h.loaded - keptSource - h.parts.lineTables;
    rows.push([label + ': after load, less source text and line tables (computed)', kb(stripped), kb(budget), stripped <= budget ? 'within' : 'over by ' + kb(stripped - budget)]);
    parts.push([label, h.parts, h.loaded]);
  }
}

const w = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length), ['measure', 'ours', 'budget', ''][i].length));
const line = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(w[i])).join(' | ') + ' |';
console.log(line(['measure', 'ours', 'budget', '']));
console.log('|' + w.map((n) => '-'.repeat(n + 2)).join('|') + '|');
for (const r of rows) console.log(line(r));
for (const [label, p, loaded] of parts) {
  const counted = p.atoms + p.objects + p.functions + p.bytecode + p.lineTables;
  console.log(
    `\n${label}, the agent's heap after load by the engine's counters: function records ${kb(p.functions)} (of which source text ~${kb(keptSource)}), ` +
      `bytecode ${kb(p.bytecode)}, line tables ${kb(p.lineTables)}, atoms (names and string constants) ${kb(p.atoms)}, objects ${kb(p.objects)}, ` +
      `other (allocator overhead, arrays, buffers) ${kb(loaded - counted)}.`,
  );
}
