/** Every route of the HTTP API, in one table (issue 5 adds to it). */
import type { Route } from '../app.js';
import { oauthRoutes } from './oauth.js';
import { userRoutes } from './user.js';
import { deviceRoutes } from './devices.js';

export const routes: Route[] = [
  ['GET', '/healthz', () => ({ ok: true })],
  ...oauthRoutes,
  ...userRoutes,
  ...deviceRoutes,
];
