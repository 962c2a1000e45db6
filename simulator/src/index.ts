/**
 * @module @flotilla/simulator
 * Simulated devices running the real agent. The fleet runner arrives with
 * issue 6; today: the Node HAL, flash, and the vm-based device host.
 */
export { createNodeHal } from './hal/node-hal.js';
export type { NodeHal, NodeHalOptions } from './hal/node-hal.js';
export { MemoryFlash, emptyFlash, cloneFlash, cloneOp, applyFlashOp } from './hal/memory-flash.js';
export type { FlashOp, FlashState } from './hal/memory-flash.js';
export { VmDevice, buildImage } from './vm-device.js';
export type { VmDeviceOptions, BootedImage } from './vm-device.js';
