/** Every route of the HTTP API, in one table (issue 5 adds to it). */
import type { Route } from '../app.js';
import { oauthRoutes } from './oauth.js';
import { userRoutes } from './user.js';
import { deviceRoutes } from './devices.js';
import { eventRoutes } from './events.js';

export const routes: Route[] = [
  ['GET', '/healthz', () => ({ ok: true })],
  ...oauthRoutes,
  ...userRoutes,
  // Before the device routes: /v1/devices/events must not read as a device called "events".
  ...eventRoutes,
  ...deviceRoutes,
];
