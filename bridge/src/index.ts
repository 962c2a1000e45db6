/**
 * @module @flotilla/bridge
 * The bridge: createBridge(options) and its parts.
 */
export { createBridge, defaultOptions } from './bridge.js';
export type { Bridge, BridgeInput, BridgeOptions } from './bridge.js';
export { bridgeFlags, bridgeHelp, bridgeOptions, CliError, listening, parseFlags, startFailure, urlHost } from './cli.js';
export { decide } from './policy/decide.js';
export { StoreError } from './store/store.js';
export type * from './policy/types.js';
export { routes, openApi } from './http/routes/index.js';
export type { Route } from './http/app.js';
export type { Guard } from './http/access.js';
