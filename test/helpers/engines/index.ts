/**
 * Run one JavaScript program on real embedded engines, every HAL call serviced
 * by Node: `startEngine(name, opts)` for each name in ENGINES.
 */
import { startDuktape } from './duktape.js';
import { startQuickJs } from './quickjs.js';
import type { EngineHost, EngineName, EngineOptions, FlashState } from './types.js';

export * from './types.js';
export { applyFlashOp, cloneFlash, emptyFlash, FlashJournal } from './flash.js';
export { buildDuktapeHost, type DuktapeBuild } from './duktape-build.js';

export const ENGINES: EngineName[] = ['quickjs', 'duktape'];

export function startEngine(name: EngineName, opts: EngineOptions): Promise<EngineHost> {
  switch (name) {
    case 'quickjs': return startQuickJs(opts);
    case 'duktape': return startDuktape(opts);
  }
}

/**
 * A reboot: closes `host` and starts the same engine with the same options,
 * booting from `flash` (default: the host's flash mirror now). Pass
 * `host.flashAfter(k)` to simulate a power cut after the k-th persisted write.
 */
export async function reboot(
  host: EngineHost,
  overrides: Partial<EngineOptions> & { flash?: FlashState } = {},
): Promise<EngineHost> {
  const flash = overrides.flash ?? host.flash();
  await host.close();
  return startEngine(host.name, { ...host.options, ...overrides, flash });
}
