/**
 * Where an image runs. A device boots the program in its flash as a script
 * whose one global beyond the language's builtins is `hal`.
 *
 * - `ownRealm`: a fresh `node:vm` context per boot, with a 5 s limit on the
 *   start: full isolation, about 280 KB of heap per device. Tests of one
 *   device use it.
 * - `sharedRealm()`: one context for a whole fleet; each distinct image is
 *   compiled once as `function (hal) { <program> }` and called per boot, so
 *   a device costs its agent's objects (about 40 KB of heap:
 *   each boot runs the whole bundle, so its functions are per device), not a
 *   realm. Images
 *   see no Node global either, but share the realm's builtins, and a start
 *   that never returns is not cut short.
 */
import vm from 'node:vm';
import type { NodeHal } from './hal/node-hal.js';

export interface ImageRunner {
  /** Runs `program` (identified by `key`, e.g. its SHA-256) with `hal`; throws what the program's start throws. */
  run(program: () => string, key: string, hal: NodeHal, filename: string): void;
}

export const ownRealm: ImageRunner = {
  run(program, _key, hal, filename) {
    vm.runInContext(program(), vm.createContext({ hal }), { filename, timeout: 5000 });
  },
};

/** Images compiled at most, kept by key; a fleet runs one or two at a time (factory and update). */
const COMPILED_MAX = 16;

export function sharedRealm(): ImageRunner {
  const context = vm.createContext({});
  const compiled = new Map<string, (hal: NodeHal) => void>();
  return {
    run(program, key, hal, filename) {
      let start = compiled.get(key);
      if (!start) {
        start = vm.compileFunction(program(), ['hal'], { parsingContext: context, filename }) as (hal: NodeHal) => void;
        if (compiled.size >= COMPILED_MAX) compiled.delete(compiled.keys().next().value as string);
        compiled.set(key, start);
      }
      start(hal);
    },
  };
}
