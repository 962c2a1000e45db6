/**
 * @module @flotilla/firmware
 * The device agent. The bundle (dist/agent.js) defines one global, `Flotilla`,
 * with these exports; an image is that bundle followed by the app, which calls
 * `Flotilla.create(hal, options)` with the HAL its host provides.
 */
export { create, AGENT_VERSION } from './cloud.js';
export type { Cloud, AgentOptions, PublishOptions, Getter, FunctionHandler, EventHandler, OtaHandler, OtaEvent } from './cloud.js';
export type { Hal, HalNet, HalClock, HalFlash, HalSystem } from './hal.js';
/** The agent's own codec, exported for the vector tests. */
export { cborEncode, cborDecode, decodeIn } from './wire.js';
export { sha256 } from './sha256.js';
