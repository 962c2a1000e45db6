/**
 * Bad input, route family by route family: missing fields, wrong types,
 * oversize bodies, unknown ids, and ids of another owner's resources (404,
 * not 403, so existence does not leak). Each case names the exact status and
 * a part of the error the caller reads; nothing is changed by a refused call.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect as tcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nestedDeeper } from '../../bridge/src/http/body.js';
import { A1, B1, startFixture, type Fixture } from '../helpers/bridge-fixture.js';

type Who = 'alice' | 'erin' | 'bob' | 'customer';
/** [family, method, path, who, body, status, error contains]. A string body is sent raw as JSON. */
type Case = [string, string, string, Who, unknown, number, string];

const CASES: Case[] = [
  // Devices
  ['devices', 'GET', '/v1/devices/' + 'f'.repeat(24), 'alice', undefined, 404, 'Device not found'],
  ['devices', 'GET', '/v1/devices/not-an-id', 'alice', undefined, 404, 'Device not found'],
  ['devices', 'GET', '/v1/devices/' + B1, 'alice', undefined, 404, 'Device not found'],
  ['devices', 'GET', '/v1/products/prod-b/devices/' + A1, 'alice', undefined, 404, 'Device not found'],
  ['devices', 'GET', '/v1/products/prod-a/devices/' + B1, 'alice', undefined, 404, 'Device not found'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', {}, 400, 'Nothing to update'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { name: 42 }, 400, 'must be text'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { name: 'x'.repeat(65) }, 400, 'longer than 64'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { name: 'evil\u202etxt.exe' }, 400, 'may not have control, zero-width or bidirectional-override characters'],
  // . and .. are path steps in a URL: such a device could never be reached by its name.
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { name: '..' }, 400, 'a device name may not be only dots'],
  // particle-cli puts a name in the URL as it is: `particle get a?b temp` asked for device "a"; a device named events is the event stream.
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { name: 'a?b' }, 400, 'a device name may not have / ? # % or \\\\'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { name: 'a/b' }, 400, 'particle-cli puts it in a URL as it is'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { name: '100%' }, 400, 'particle-cli puts it in a URL as it is'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { name: 'Events' }, 400, 'a device may not be named events: /v1/devices/events is the event stream'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { name: 'b1b1b1b1b1b1b1b1b1b1b1b1' }, 400, 'that reads as a device ID'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { development: 'maybe' }, 400, 'true or false'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { desired_firmware_version: 'latest' }, 400, 'version number'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { desired_firmware_version: 0 }, 400, 'integer from 1'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { groups: [1, 2] }, 400, 'list of strings'],
  // Refused as a whole: the name in the same edit is not kept ("changed nothing" below).
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { name: 'renamed-anyway', groups: [5] }, 400, 'list of strings'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { name: 'renamed-anyway', groups: ['no spaces'] }, 400, 'must be 1 to 64 lowercase letters'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { name: 'renamed-anyway', desired_firmware_version: 9 }, 404, 'Firmware version 9 not found'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { notes: 'noted-anyway', development: 'maybe' }, 400, 'true or false'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { desired_firmware_version: 9 }, 404, 'Firmware version 9 not found'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { firmware_version: 9 }, 404, 'no firmware version 9'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { build_target_version: '5.0.0' }, 400, 'does not compile'],
  ['devices', 'PUT', '/v1/devices/' + A1, 'alice', { file: 'not a file' }, 400, 'multipart file'],
  ['firmware', 'POST', '/v1/products/prod-a/firmware', 'alice', { version: 2 }, 400, 'multipart file field named file'],
  ['firmware', 'GET', '/v1/products/prod-a/firmware/two', 'alice', undefined, 400, 'version number'],
  ['firmware', 'GET', '/v1/products/prod-a/firmware/7', 'alice', undefined, 404, 'Firmware version not found'],
  // Particle's cloud compile: said to be missing, not a bare 404 that particle-cli showed as "Compile failed: Not found".
  ['firmware', 'POST', '/v1/binaries', 'alice', { platform_id: 6 }, 501, 'Cloud compile is not available on this bridge'],
  ['firmware', 'GET', '/v1/build_targets', 'alice', undefined, 501, 'Cloud compile is not available on this bridge'],
  ['firmware', 'PUT', '/v1/products/prod-a/firmware/release', 'alice', {}, 400, 'The version field is required'],
  ['firmware', 'PUT', '/v1/products/prod-a/firmware/release', 'alice', { version: 7, product_default: true }, 404, 'no firmware version 7'],
  ['firmware', 'PUT', '/v1/products/prod-a/firmware/release', 'alice', { version: 7 }, 400, 'product_default: true) or to groups'],
  ['firmware', 'PUT', '/v1/products/prod-a/firmware/release', 'alice', { version: 7, product_default: 'yes' }, 400, 'true or false'],
  ['firmware', 'PUT', '/v1/products/prod-a/firmware/release', 'alice', { version: 7, groups: 'beta', concurrency: 0 }, 400, 'concurrency must be a whole number of at least 1'],
  ['firmware', 'PUT', '/v1/products/prod-a/firmware/release', 'alice', { version: 7, groups: 'beta', failure_threshold: 150 }, 400, 'failure_threshold'],
  // Below a tenth of a percent the threshold was stored as 0 (a pause at the first failure).
  ['firmware', 'PUT', '/v1/products/prod-a/firmware/release', 'alice', { version: 7, groups: 'beta', failure_threshold: 0.04 }, 400, 'failure_threshold is a percentage from 0.1 to 100'],
  // Refused before the release: the store refused it after, leaving a release with no rollout.
  ['firmware', 'PUT', '/v1/products/prod-a/firmware/release', 'alice', { version: 7, groups: 'beta', concurrency: 200000 }, 400, 'at most 100000'],
  ['firmware', 'GET', '/v1/products/prod-a/impact?action=nuke&firmware_version=2', 'alice', undefined, 400, 'action must be'],
  ['firmware', 'GET', '/v1/products/prod-a/rollouts/77', 'alice', undefined, 404, 'Rollout not found'],
  ['firmware', 'PUT', '/v1/products/prod-a/rollouts/77', 'alice', { action: 'pause' }, 404, 'Rollout not found'],
  ['firmware', 'GET', '/v1/products/prod-a/ota_jobs', 'alice', undefined, 400, 'Give device_id'],
  ['firmware', 'GET', '/v1/products/prod-a/ota_jobs?device_id=' + B1, 'alice', undefined, 404, 'Device not found'],
  ['devices', 'POST', '/v1/devices/' + A1 + '/setLed', 'alice', { arg: { no: 1 } }, 400, 'arg must be a string'],
  ['devices', 'POST', '/v1/devices/' + A1 + '/setLed', 'alice', { arg: 'x'.repeat(1025) }, 400, 'over 1024 bytes'],
  // A1 is offline here (never connected): it is not connected, whatever name is asked (a live device's unknown names: http-devices.test.ts).
  ['devices', 'POST', '/v1/devices/' + A1 + '/nosuchfn', 'alice', {}, 404, 'Device is not connected'],
  ['devices', 'GET', '/v1/devices/' + A1 + '/nosuchvar', 'alice', undefined, 404, 'Device is not connected'],
  ['devices', 'GET', '/v1/products/prod-a/devices?sortAttr=bogus', 'alice', undefined, 400, 'sortAttr must be one of deviceName, deviceId, firmwareVersion, lastConnection'],
  ['devices', 'GET', '/v1/products/prod-a/devices?sortDir=sideways', 'alice', undefined, 400, 'sortDir must be asc or desc'],
  ['users', 'PUT', '/v1/user', 'alice', { password: 'new-password-1' }, 400, 'current_password is required'],
  ['devices', 'POST', '/v1/devices', 'alice', {}, 400, 'id field is required'],
  ['devices', 'POST', '/v1/devices', 'alice', { id: B1 }, 404, 'Device not found'],
  ['devices', 'POST', '/v1/products/prod-a/devices', 'alice', {}, 400, 'Send ids'],
  ['devices', 'POST', '/v1/products/prod-a/devices', 'alice', { ids: 'x'.repeat(30) + ',' + 'y' }, 200, ''],
  ['devices', 'PUT', '/v1/products/prod-a/devices', 'alice', { action: 'explode' }, 400, 'action must be'],
  ['devices', 'DELETE', '/v1/products/prod-b/devices/' + B1, 'alice', undefined, 404, 'Device not found'],
  ['devices', 'DELETE', '/v1/products/prod-a/devices/' + A1, 'alice', { deny: 'maybe' }, 400, 'deny must be true or false'],
  // Any JSON body: nesting deeper than any field needs is refused before it is parsed (a webhook's template and
  // product settings are walked by recursion and written by JSON.stringify, which overflowed a few thousand levels down).
  ['integrations', 'POST', '/v1/products/prod-a/integrations', 'alice', '{"event":"t","url":"https://example.com/x","json":' + '{"a":'.repeat(2000) + '1' + '}'.repeat(2000) + '}', 400, 'nested deeper than 64 levels'],
  ['products', 'PUT', '/v1/products/prod-a', 'alice', '{"settings":{"deep":' + '['.repeat(4500) + ']'.repeat(4500) + '}}', 400, 'nested deeper than 64 levels'],
  // Events
  ['events', 'POST', '/v1/products/prod-a/events', 'alice', {}, 400, 'name field is required'],
  ['events', 'POST', '/v1/products/prod-a/events', 'alice', { name: 'a//b' }, 400, 'Event name'],
  ['events', 'POST', '/v1/products/prod-a/events', 'alice', { name: 'x', ttl: -1 }, 400, 'ttl'],
  ['events', 'POST', '/v1/products/prod-a/events', 'alice', { name: 'x', ttl: 16777216 }, 400, 'ttl must be 0 to 16777215 seconds'],
  // Device OS's largest ttl, which Particle's cloud accepts (before, over 86400 was refused).
  ['events', 'POST', '/v1/products/prod-a/events', 'alice', { name: 'x', ttl: 16777215 }, 200, ''],
  ['events', 'POST', '/v1/products/prod-a/events', 'alice', { name: 'spark/status' }, 400, 'reserved'],
  ['events', 'POST', '/v1/products/prod-a/events', 'alice', { name: 'x', data: { a: 1 } }, 400, 'data must be a string'],
  ['events', 'POST', '/v1/products/prod-a/events', 'alice', { name: 'x', data: [1, 2] }, 400, 'data must be a string'],
  ['integrations', 'POST', '/v1/products/prod-a/integrations', 'alice', { event: 'x', url: 'http://example.com/', name: { a: 1 } }, 400, 'name must be a string'],
  ['integrations', 'POST', '/v1/products/prod-a/integrations', 'alice', { event: ['x'], url: 'http://127.0.0.1:9/' }, 400, 'The event field is required'],
  ['integrations', 'POST', '/v1/products/prod-a/integrations', 'alice', { event: 'x', url: 'http://169.254.169.254/latest/meta-data' }, 400, 'url: webhook target 169.254.169.254 is a local, private or reserved address; the bridge\'s operator can allow its range (--webhook-allow, FLOTILLA_WEBHOOK_ALLOW'],
  ['events', 'POST', '/v1/products/prod-b/events', 'alice', { name: 'x' }, 404, 'Product not found'],
  ['events', 'GET', '/v1/events', 'alice', undefined, 400, 'prefix is required'],
  // Products and orgs
  ['products', 'POST', '/v1/user/products', 'alice', {}, 400, 'name field is required'],
  ['products', 'POST', '/v1/user/products', 'alice', { name: 'X', slug: '1234' }, 400, 'slug'],
  // Names and titles are shown in listings and terminals: no control characters (a NUL was stored, an ESC drove the CLI's terminal).
  ['products', 'POST', '/v1/user/products', 'alice', { name: 'a\u0000b' }, 400, 'product name may not have control, zero-width or bidirectional-override characters'],
  ['products', 'POST', '/v1/user/products', 'alice', { name: 'evil\u001b]0;x' }, 400, 'product name may not have control'],
  ['products', 'POST', '/v1/user/products', 'alice', { name: 'Dup', slug: 'prod-b' }, 409, 'taken'],
  ['products', 'POST', '/v1/user/products', 'alice', { product: { name: 'Argon fleet', platform_id: 12 } }, 400, 'platform_id: this bridge\'s devices are Photon-class (platform 6)'],
  ['products', 'POST', '/v1/user/products', 'alice', { product: { name: 'Junk', platform_id: 'x' } }, 400, 'platform_id'],
  ['products', 'POST', '/v1/user/products', 'alice', { name: 'Described', description: { x: 1 } }, 400, 'description must be a string'],
  ['products', 'POST', '/v1/user/products', 'alice', { name: 'Described', description: 5 }, 400, 'description must be a string'],
  ['products', 'PUT', '/v1/products/prod-a', 'alice', { description: 5 }, 400, 'description must be a string'],
  ['products', 'PUT', '/v1/products/prod-a', 'alice', { settings: { description: { x: 1 } } }, 400, 'description must be a string'],
  ['products', 'POST', '/v1/user/products', 'customer', { name: 'Mine' }, 403, 'Only a user'],
  ['products', 'PUT', '/v1/products/prod-a', 'alice', { settings: [1] }, 400, 'settings must be an object'],
  ['products', 'PUT', '/v1/products/prod-a', 'alice', {}, 400, 'Send settings'],
  ['products', 'GET', '/v1/products/999999', 'alice', undefined, 404, 'Product not found'],
  ['products', 'GET', '/v1/products/prod-b', 'alice', undefined, 404, 'Product not found'],
  ['orgs', 'POST', '/v1/orgs', 'alice', { name: '!!!' }, 400, 'slug'],
  ['orgs', 'GET', '/v1/orgs/no-such-org/products', 'alice', undefined, 404, 'Organization not found'],
  // Teams
  ['teams', 'POST', '/v1/products/prod-a/team', 'alice', {}, 400, 'username field is required'],
  ['teams', 'POST', '/v1/products/prod-a/team', 'alice', { username: 'bob', role: 'emperor' }, 400, 'role must be'],
  ['teams', 'POST', '/v1/products/prod-a/team', 'alice', { username: 'erin' }, 409, 'already on the team'],
  ['teams', 'POST', '/v1/products/prod-a/team', 'alice', { friendly_name: 'ci' }, 400, 'scopes'],
  ['teams', 'POST', '/v1/products/prod-a/team', 'alice', { friendly_name: '', scopes: ['device.view'] }, 400, 'friendly_name'],
  ['teams', 'PUT', '/v1/products/prod-a/team/nobody', 'alice', { role: 'viewer' }, 404, 'No team member'],
  ['teams', 'PUT', '/v1/products/prod-a/team/erin', 'alice', {}, 400, 'role must be'],
  ['teams', 'DELETE', '/v1/products/prod-a/team/nobody', 'alice', undefined, 404, 'No team member'],
  ['teams', 'GET', '/v1/products/prod-b/team', 'alice', undefined, 404, 'Product not found'],
  ['invitations', 'PUT', '/v1/user/invitations/nope', 'alice', { accept: true }, 404, 'Invitation not found'],
  // Customers and clients
  ['customers', 'POST', '/v1/products/prod-a/customers', 'alice', {}, 400, 'username field is required'],
  ['customers', 'POST', '/v1/products/prod-a/customers', 'alice', { email: 'c@example.com' }, 400, 'password field is required'],
  ['customers', 'POST', '/v1/products/prod-a/customers', 'alice', { email: 'not an address', password: 'c-password' }, 400, 'email must be an e-mail address'],
  ['customers', 'POST', '/v1/products/prod-a/customers', 'alice', { email: 'cust1@example.com', password: 'cust1-password' }, 409, 'exists'],
  ['customers', 'POST', '/v1/products/prod-a/customers', 'alice', { email: 'c@example.com', password: 'short' }, 400, 'password must be at least 8 characters'],
  ['customers', 'PUT', '/v1/products/prod-a/customers/cust1@example.com', 'alice', { password: 'short' }, 400, 'password must be at least 8 characters'],
  ['customers', 'PUT', '/v1/products/prod-a/customers/nobody@example.com', 'alice', { password: 'x' }, 404, 'Customer not found'],
  ['customers', 'POST', '/v1/products/prod-a/customers', 'alice', { email: 'c@example.com', no_password: 'perhaps' }, 400, 'no_password must be true or false'],
  ['customers', 'POST', '/v1/products/prod-a/customers', 'alice', { email: 'c@example.com', no_password: true }, 400, 'a customer without a password is not allowed'],
  ['customers', 'PUT', '/v1/products/prod-a', 'alice', { settings: { customer_auth: 3 } }, 400, 'customer_auth must be one of'],
  ['claims', 'POST', '/v1/device_claims', 'alice', { product: [1] }, 400, 'product must be a product id or slug'],
  ['claims', 'POST', '/v1/device_claims', 'alice', { product: 'prod-b' }, 404, 'Product not found'],
  ['claims', 'POST', '/v1/devices', 'customer', { id: B1 }, 404, 'Device not found'],
  ['claims', 'POST', '/v1/devices', 'customer', {}, 400, 'id field is required'],
  ['customers', 'GET', '/v1/products/prod-b/customers', 'alice', undefined, 404, 'Product not found'],
  ['clients', 'POST', '/v1/products/prod-a/clients', 'alice', { name: 'w', type: 'web' }, 400, 'redirect_uri'],
  ['clients', 'POST', '/v1/products/prod-a/clients', 'alice', { name: 'w', type: 'web', redirect_uri: 'javascript:alert(1)' }, 400, 'http(s)'],
  ['clients', 'POST', '/v1/products/prod-a/clients', 'alice', { name: 'w', type: 'robot' }, 400, 'installed or web'],
  ['clients', 'POST', '/v1/clients', 'alice', {}, 400, 'name field is required'],
  ['clients', 'DELETE', '/v1/clients/not-mine', 'alice', undefined, 404, 'Client not found'],
  ['clients', 'PUT', '/v1/products/prod-a/clients/not-there', 'alice', { name: 'x' }, 404, 'Client not found'],
  // Groups
  ['groups', 'POST', '/v1/products/prod-a/groups', 'alice', {}, 400, 'name field is required'],
  ['groups', 'POST', '/v1/products/prod-a/groups', 'alice', { name: 'ok', color: 'blue' }, 400, '#rrggbb'],
  ['groups', 'PUT', '/v1/products/prod-a/groups/nope', 'alice', { name: 'x' }, 404, 'no group'],
  ['groups', 'DELETE', '/v1/products/prod-a/groups/nope', 'alice', undefined, 404, 'Group not found'],
  // Diagnostics
  ['diagnostics', 'GET', '/v1/diagnostics/' + A1 + '?end_date=soon', 'alice', undefined, 400, ''],
  ['diagnostics', 'GET', '/v1/diagnostics/' + A1 + '?start_date=2030-01-01&end_date=2020-01-01', 'alice', undefined, 400, '"ok":false,"error":"start_date is after end_date"'],
  ['diagnostics', 'GET', '/v1/diagnostics/' + A1 + '?end_date=-271821-04-20T00:00:00Z', 'alice', undefined, 400, '"ok":false,"error":"end_date is not a date (ISO 8601) from 1970 to 9999"'],
  ['diagnostics', 'GET', '/v1/diagnostics/' + A1 + '?start_date=%2B275760-09-13T00:00:00Z', 'alice', undefined, 400, 'start_date is not a date'],
  // Date.parse takes all three (March 2nd, the year 2000, the machine's zone): not ISO 8601.
  ['diagnostics', 'GET', '/v1/diagnostics/' + A1 + '?start_date=2026-02-30', 'alice', undefined, 400, 'start_date is not a date'],
  ['diagnostics', 'GET', '/v1/diagnostics/' + A1 + '?start_date=0', 'alice', undefined, 400, 'start_date is not a date'],
  ['diagnostics', 'GET', '/v1/diagnostics/' + A1 + '?end_date=Nov%2024%202026', 'alice', undefined, 400, 'end_date is not a date'],
  ['diagnostics', 'GET', '/v1/diagnostics/' + A1 + '?start_date=2026-02-28T24:00:00Z', 'alice', undefined, 400, 'start_date is not a date'],
  ['diagnostics', 'GET', '/v1/diagnostics/' + B1 + '/last', 'alice', undefined, 404, 'Device not found'],
  ['diagnostics', 'POST', '/v1/diagnostics/' + A1 + '/update', 'alice', undefined, 404, 'not connected'],
  // Organizations: ownership, transfers, whitelist, billing and usage, SIM data
  ['orgs', 'PUT', '/v1/orgs/no-such-org/owner', 'alice', { username: 'bob' }, 404, 'Organization not found'],
  ['orgs', 'GET', '/v1/orgs/no-such-org/devices', 'alice', undefined, 404, 'Organization not found'],
  ['orgs', 'GET', '/v1/orgs/no-such-org/sims', 'alice', undefined, 404, 'Organization not found'],
  ['transfers', 'POST', '/v1/products/prod-a/transfers', 'alice', {}, 400, 'The org field is required'],
  ['transfers', 'POST', '/v1/products/prod-a/transfers', 'alice', { org: ['x'] }, 400, 'The org field is required'],
  ['transfers', 'POST', '/v1/products/prod-a/transfers', 'alice', { org: 'no-such-org' }, 404, 'Organization not found'],
  ['transfers', 'POST', '/v1/products/prod-a/transfers', 'erin', { org: 'no-such-org' }, 403, 'Permission denied'],
  ['transfers', 'POST', '/v1/products/prod-b/transfers', 'alice', { org: 'no-such-org' }, 404, 'Product not found'],
  ['transfers', 'DELETE', '/v1/products/prod-a/transfers/nope', 'alice', undefined, 404, 'Transfer not found'],
  ['transfers', 'PUT', '/v1/orgs/no-such-org/transfers/nope', 'alice', { accept: true }, 404, 'Organization not found'],
  ['billing', 'PUT', '/v1/products/prod-a/billing', 'alice', {}, 400, 'Send at least one'],
  ['billing', 'PUT', '/v1/products/prod-a/billing', 'alice', { email: 'not-mail' }, 400, 'e-mail address'],
  ['billing', 'PUT', '/v1/products/prod-a/billing', 'alice', { country: 'France' }, 400, 'two-letter'],
  ['billing', 'PUT', '/v1/products/prod-a/billing', 'alice', { color: 'red' }, 400, 'Unknown billing field color'],
  ['billing', 'PUT', '/v1/products/prod-a/billing', 'alice', { name: 5 }, 400, 'must be text'],
  ['billing', 'PUT', '/v1/products/prod-a/billing', 'erin', { name: 'x' }, 403, 'Permission denied'],
  ['billing', 'GET', '/v1/products/prod-a/billing', 'erin', undefined, 403, 'Permission denied'],
  ['billing', 'GET', '/v1/products/prod-a/usage?end_date=2020-13-45', 'alice', undefined, 400, 'end_date must be a date'],
  ['billing', 'GET', '/v1/products/prod-a/usage?end_date=2024-02-30', 'alice', undefined, 400, 'end_date must be a date'],
  ['billing', 'GET', '/v1/products/prod-a/usage?end_date=2024-02-30T10:00:00Z', 'alice', undefined, 400, 'end_date must be a date'],
  ['billing', 'GET', '/v1/products/prod-a/usage?end_date=9999-12-31T23:59:59-14:00', 'alice', undefined, 400, 'end_date must be a date'],
  ['billing', 'GET', '/v1/products/prod-a/usage?end_date=2024-01-01junk', 'alice', undefined, 400, 'end_date must be a date'],
  ['billing', 'GET', '/v1/products/prod-a/usage?end_date=2024-01-01T23:00:00-05:00', 'alice', undefined, 200, '"end_date":"2024-01-02"'],
  ['billing', 'GET', '/v1/orgs/no-such-org/usage', 'alice', undefined, 404, 'Organization not found'],
  ['billing', 'PUT', '/v1/orgs/no-such-org/billing', 'alice', { name: 'x' }, 404, 'Organization not found'],
  ['billing', 'POST', '/v1/orgs/no-such-org/whitelist', 'alice', { username: 'bob' }, 404, 'Organization not found'],
  ['billing', 'GET', '/v1/orgs/no-such-org/usage', 'customer', undefined, 404, 'Organization not found'],
  ['sims', 'PUT', '/v1/products/prod-a/sims/89012608823100000009/data_usage', 'alice', { date: '2024-01-01', bytes: 1 }, 404, 'SIM not found'],
  ['sims', 'GET', '/v1/products/prod-a/sims/89012608823100000009/data_usage', 'alice', undefined, 404, 'SIM not found'],
  // Bodies and paths
  ['bodies', 'POST', '/v1/products/prod-a/groups', 'alice', '{"name": ', 400, 'not a JSON object'],
  ['bodies', 'POST', '/v1/products/prod-a/groups', 'alice', '[1,2]', 400, 'not a JSON object'],
  ['bodies', 'GET', '/v1/devices/%E0%A4%A', 'alice', undefined, 400, 'percent-encoding'],
  // Pages: whole numbers from 1 (more than 100 per page is 100).
  ['bodies', 'GET', '/v1/products/prod-a/devices?per_page=2.5', 'alice', undefined, 400, 'per_page must be a whole number from 1'],
  ['bodies', 'GET', '/v1/products/prod-a/devices?page=0', 'alice', undefined, 400, 'page must be a whole number from 1'],
  ['bodies', 'GET', '/v1/products/prod-a/customers?per_page=ten', 'alice', undefined, 400, 'per_page must be a whole number from 1'],
  ['bodies', 'GET', '/v1/products/prod-a/sims?page=-1', 'alice', undefined, 400, 'page must be a whole number from 1'],
  ['bodies', 'GET', '/v1/products/prod-a/devices?per_page=1000', 'alice', undefined, 200, ''],
  ['bodies', 'PATCH', '/v1/devices', 'alice', undefined, 405, 'Method not allowed'],
];

describe('HTTP API: bad input, every route family', function () {
  this.timeout(30000);
  let f: Fixture;
  let base: string;

  before(async () => {
    // Errors logged are kept: refusing bad input logs none.
    f = await startFixture({ httpPort: 0, logLevel: 'error', logOutput: { write: (line) => errorLines.push(line) } });
    base = 'http://127.0.0.1:' + f.bridge.ports.http;
  });
  after(() => f.close());
  const errorLines: string[] = [];

  for (const [family, method, path, who, body, status, error] of CASES) {
    it(`${family}: ${method} ${path.replace(/[0-9a-f]{24}/g, '<id>')} ${body === undefined ? '' : JSON.stringify(body).slice(0, 60)} → ${status}`, async () => {
      const token = f.tokens[who];
      const res = await fetch(base + path, {
        method,
        headers: { authorization: 'Bearer ' + token, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      assert.equal(res.status, status, text);
      if (error) assert.ok(text.includes(error), text);
      if (status >= 400) assert.ok(!/\bat .*\.(ts|js):\d+/.test(text), 'no stack trace in ' + text);
    });
  }

  it('measures JSON nesting without parsing: brackets in strings and escaped quotes do not count', () => {
    const at = (n: number) => '{"a":'.repeat(n - 1) + '[1]' + '}'.repeat(n - 1);
    assert.equal(nestedDeeper(at(64), 64), false);
    assert.equal(nestedDeeper(at(65), 64), true);
    assert.equal(nestedDeeper('{"s":"' + '[{'.repeat(100) + '\\"' + '{'.repeat(100) + '"}', 2), false);
    assert.equal(nestedDeeper('[' + '"\\\\"'.repeat(3) + ',[[1]]]', 2), true);
  });

  it('refuses an oversize body with 413 before reading it all', async () => {
    const res = await fetch(base + '/v1/products/prod-a/groups', {
      method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.alice, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x', description: 'y'.repeat(2 * 1024 * 1024) }),
    });
    assert.equal(res.status, 413);
  });

  it('stops reading a chunked body (no length declared) once it passes the limit, stores nothing, and serves the next request', async () => {
    const groups = async () => ((await (await fetch(base + '/v1/products/prod-a/groups', { headers: { authorization: 'Bearer ' + f.tokens.alice } })).json()) as { groups: unknown[] }).groups.length;
    const before = await groups();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        // 64 KB at a time, up to 8 MB: far past the limit, bounded if it were never refused.
        if (sent >= 8 * 1024 * 1024) return c.close();
        sent += 65536;
        c.enqueue(new Uint8Array(65536).fill(0x20));
      },
    });
    const outcome = await fetch(base + '/v1/products/prod-a/groups', {
      method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.alice, 'content-type': 'application/json' }, body, duplex: 'half',
    } as RequestInit).then((r) => r.status, () => 'connection closed');
    assert.ok(outcome === 413 || outcome === 'connection closed', String(outcome));
    assert.ok(sent < 8 * 1024 * 1024, 'the bridge stopped reading before the body ended');
    assert.equal(await groups(), before);
  });

  it('answers a chunked body past the limit with 413 before closing the connection (a reset came first, and no answer)', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const c = tcp(f.bridge.ports.http!, '127.0.0.1');
      let got = '';
      c.on('data', (d) => (got += d));
      c.on('error', (e) => (got ? resolve(got) : reject(e)));
      c.on('close', () => resolve(got));
      c.write('POST /v1/products/prod-a/groups HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ' + f.tokens.alice + '\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n');
      // 2 MB in 64 KB chunks, then the body goes on (never ended): the answer must come all the same.
      const chunk = 'x'.repeat(65536);
      for (let i = 0; i < 32; i++) c.write(chunk.length.toString(16) + '\r\n' + chunk + '\r\n');
    });
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.match(answer, /connection: close/i);
    assert.match(answer, /Request body is larger than \d+ bytes/);
  });

  it('answers a request target that is no URL (GET http://[) with 400, and a body cut off mid-way is no server error', async () => {
    const raw = (text: string, end: boolean) => new Promise<string>((resolve, reject) => {
      const c = tcp(f.bridge.ports.http!, '127.0.0.1');
      let got = '';
      c.on('data', (d) => (got += d));
      c.on('error', reject);
      c.on('close', () => resolve(got));
      c.write(text);
      if (end) c.end();
      else setTimeout(() => c.destroy(), 100);
    });
    const answer = await raw('GET http://[ HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n', true);
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.match(answer, /not a valid URL path/);
    // A client that declares 100 bytes, sends 10 and hangs up: nothing to answer, and the bridge logs no error.
    await raw('POST /v1/products/prod-a/groups HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ' + f.tokens.alice + '\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"name":"x', false);
    await new Promise((r) => setTimeout(r, 200));
  });

  it('takes a file only from a multipart body: a JSON object shaped like an upload, naming a file on the server, is refused and the file left alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-forged-'));
    try {
      const victim = join(dir, 'victim.txt');
      writeFileSync(victim, 'root:x:0:0\nsecret line\n');
      const forged = { path: victim, filename: 'x', size: 22, sha256: '0'.repeat(64) };
      for (const [method, path, body, error] of [
        ['POST', '/v1/products/prod-a/devices', { file: forged }, 'Send ids'],
        ['POST', '/v1/products/prod-a/firmware', { file: forged, version: 78 }, 'multipart file field named file'],
        ['PUT', '/v1/devices/' + A1, { file: forged, version: 78 }, 'multipart file field named file'],
        ['PUT', '/v1/devices/' + A1, { file: { ...forged, path: join(dir, 'missing') }, version: 78 }, 'multipart file field named file'],
      ] as const) {
        const res = await fetch(base + path, { method, headers: { authorization: 'Bearer ' + f.tokens.alice, 'content-type': 'application/json' }, body: JSON.stringify(body) });
        const text = await res.text();
        assert.equal(res.status, 400, method + ' ' + path + ': ' + text);
        assert.ok(text.includes(error), text);
        assert.ok(!text.includes('secret line'), 'the file is not read back: ' + text);
        assert.equal(readFileSync(victim, 'utf8'), 'root:x:0:0\nsecret line\n', 'the file is still there, unchanged');
      }
      assert.equal(await f.bridge.store.getFirmware(f.products.A, 78), null);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('logged no error while refusing bad input', () => assert.deepEqual(errorLines, []));

  it('changed nothing while refusing', async () => {
    const s = f.bridge.store;
    assert.deepEqual((await s.listGroups(f.products.A)).map((g) => g.name), []);
    assert.equal((await s.getDevice(A1))!.name, null);
    assert.equal((await s.getDevice(A1))!.notes, null);
    assert.deepEqual((await s.listCustomers(f.products.A)).map((c) => c.username), ['cust1@example.com']);
    assert.equal((await s.listDevices(f.products.A)).length, 2);
  });

  // Last: it logs an error on purpose.
  it('a write the database cannot take now (another process holds its lock) answers 503 with the reason and Retry-After, not 500', async function () {
    this.timeout(20000);
    const Database = createRequire(import.meta.url)('better-sqlite3') as new (f: string) => { exec(sql: string): void; close(): void };
    const other = new Database(join(f.dir, 'flotilla.db'));
    try {
      other.exec('BEGIN IMMEDIATE');
      // The write waits out the busy timeout (5 s), then SQLite gives up.
      const res = await fetch(base + '/v1/products/prod-a/groups', { method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.alice, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'locked-out' }) });
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '5');
      assert.match(((await res.json()) as { error: string }).error, /^The database cannot be written now \(SQLITE_BUSY\); try again later$/);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    const again = await fetch(base + '/v1/products/prod-a/groups', { method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.alice, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'locked-out' }) });
    assert.equal(again.status, 201, 'and the next one, once it can, is done');
  });
});
