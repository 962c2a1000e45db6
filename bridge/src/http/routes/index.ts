/**
 * Every route of the HTTP API, in one table, and the OpenAPI description
 * made from it (GET /v1/openapi.json): each operation names its guard, so the
 * document says who may call what.
 */
import { minRoleFor, type Action } from '@flotilla/protocol';
import { guard } from '../access.js';
import { route, type Route } from '../app.js';
import { oauthRoutes } from './oauth.js';
import { authorizeRoutes } from './authorize.js';
import { userRoutes } from './user.js';
import { deviceRoutes } from './devices.js';
import { eventRoutes } from './events.js';
import { teamRouteTable } from './teams.js';
import { productRoutes } from './products.js';
import { customerRoutes } from './customers.js';
import { diagnosticsRoutes } from './diagnostics.js';
import { integrationRoutes } from './integrations.js';
import { simRoutes } from './sims.js';
import { firmwareRoutes } from './firmware.js';
import { orgRoutes } from './orgs.js';
import { billingRoutes } from './billing.js';

const table: Route[] = [
  route('GET', '/healthz', guard.public('liveness probe'), () => ({ ok: true })),
  ...oauthRoutes,
  ...authorizeRoutes,
  ...userRoutes,
  // Before the device routes: /v1/devices/events must not read as a device called "events".
  ...eventRoutes,
  ...deviceRoutes,
  ...teamRouteTable,
  ...productRoutes,
  ...customerRoutes,
  ...diagnosticsRoutes,
  ...integrationRoutes,
  ...simRoutes,
  ...firmwareRoutes,
  ...orgRoutes,
  ...billingRoutes,
];

/** OpenAPI 3.1 from the route table: paths, parameters, and each operation's guard as x-flotilla-guard. */
export function openApi(routes: readonly Route[]) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.path.replace(/[:*]([A-Za-z]+)/g, '{$1}');
    const params = [...r.path.matchAll(/[:*]([A-Za-z]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const g = r.guard;
    const action = g.kind === 'public' || g.kind === 'signedIn' ? null : typeof g.action === 'string' ? g.action : 'depends on the body';
    (paths[path] ??= {})[r.method.toLowerCase()] = {
      parameters: params,
      security: g.kind === 'public' ? [] : r.password ? [{ bearer: [] }, { password: [] }] : [{ bearer: [] }],
      'x-flotilla-guard': g.kind === 'public' || g.kind === 'signedIn'
        ? { kind: g.kind, why: g.why }
        : { kind: g.kind, action, min_role: action && action !== 'depends on the body' ? minRoleFor(action as Action) : null },
      responses: { '200': { description: 'OK' }, '401': { description: 'No valid token' }, '403': { description: 'The role does not allow it' }, '404': { description: 'Not found, or no role on it' } },
      ...(r.files ? { requestBody: { content: { 'multipart/form-data': { schema: { type: 'object', properties: { file: { type: 'string', format: 'binary' } } } } } } } : {}),
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Flotilla operator API (Particle Cloud API v1 compatible)', version: '1' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, password: { type: 'http', scheme: 'basic', description: "a user's username and password" } } },
    paths,
  };
}

// The description lists every route, itself too (read when asked, once the table is whole).
export const routes: Route[] = [...table, route('GET', '/v1/openapi.json', guard.public('the API description'), () => openApi(routes))];
