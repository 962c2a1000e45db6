/**
 * @module @flotilla/simulator
 * Fleets of the real agent: the Node HAL and flash, the device host, scenarios,
 * provisioning through the operator API, and the fleet runner.
 */
export { createNodeHal } from './hal/node-hal.js';
export type { NodeHal, NodeHalOptions, DeviceIdentity } from './hal/node-hal.js';
export { MemoryFlash, emptyFlash, cloneFlash, cloneOp, applyFlashOp } from './hal/memory-flash.js';
export type { FlashOp, FlashState } from './hal/memory-flash.js';
export { VmDevice, buildImage } from './vm-device.js';
export type { VmDeviceOptions, BootedImage, BootInfo } from './vm-device.js';
export { ownRealm, sharedRealm } from './realm.js';
export type { ImageRunner } from './realm.js';
export { loadScenario, parseScenario, ScenarioError, SCENARIO_DIR } from './scenario.js';
export type { Scenario } from './scenario.js';
export { agentBundle, fleetImage, fleetProgram } from './app.js';
export { provision, readCredentials, writeCredentials, ProvisionError } from './provision.js';
export type { CredentialsFile, DeviceCredentials, ProvisionOptions } from './provision.js';
export { Fleet, FleetError, MAX_FLEET, defaultFleetOptions, parseBridgeUrl } from './fleet.js';
export type { FleetOptions, FleetStats } from './fleet.js';
export { LinkWatch } from './link-watch.js';
export { Frames } from './mqtt-frames.js';
export { statusLine, summary } from './status.js';
export type { Sample } from './status.js';
