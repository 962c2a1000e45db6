import { startEngine, emptyFlash } from '../test/helpers/engines/index.js';
async function measure(cfg: 'debian' | 'low-memory', src: string) {
  const e = await startEngine('duktape', { flash: emptyFlash(1024), duktapeConfig: cfg });
  await e.run('var x = 0; function T(){} T.prototype.ev = function (a, b) { return a + b; }; var t = new T();');
  const base = (await e.memory()).used;
  await e.run(src);
  const used = (await e.memory()).used;
  await e.close();
  return used - base;
}
const N = 100;
const cases: Record<string, string> = {
  bound: `var keep = []; for (var i = 0; i < ${N}; i++) keep.push(t.ev.bind(t, i));`,
  closure: `var keep = []; function mk(i) { return function () { return i; }; } for (var i = 0; i < ${N}; i++) keep.push(mk(i));`,
  emptyArray: `var keep = []; for (var i = 0; i < ${N}; i++) keep.push([]);`,
  emptyObject: `var keep = []; for (var i = 0; i < ${N}; i++) keep.push({});`,
  array3: `var keep = []; for (var i = 0; i < ${N}; i++) keep.push([1, 2, 3]);`,
  obj7: `var keep = []; for (var i = 0; i < ${N}; i++) keep.push({ a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7 });`,
  str40: `var keep = []; for (var i = 0; i < ${N}; i++) keep.push('dev/0123456789abcdef01234567/hello/' + i);`,
  u8_256: `var keep = []; for (var i = 0; i < ${N}; i++) keep.push(new Uint8Array(256));`,
  u8_0: `var keep = []; for (var i = 0; i < ${N}; i++) keep.push(new Uint8Array(0));`,
  objProp: `var keep = {}; for (var i = 0; i < ${N}; i++) keep['k' + i] = i;`,
};
for (const cfg of ['debian', 'low-memory'] as const) {
  const row: string[] = [cfg];
  for (const [k, v] of Object.entries(cases)) row.push(k + '=' + ((await measure(cfg, v)) / N).toFixed(0));
  console.log(row.join(' '));
}
