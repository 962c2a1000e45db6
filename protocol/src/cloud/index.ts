/**
 * @module @flotilla/protocol
 * The protocol for Node programs (bridge, simulator, tests): the whole ES5
 * core plus the cbor-x codec. The firmware imports `@flotilla/protocol/core`.
 */
export * from '../core/index.js';
export { encode, decode } from './codec.js';
