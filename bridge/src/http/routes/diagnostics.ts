/**
 * Device Vitals, as Particle's diagnostics routes (user and product forms):
 * refresh, last, history with a date range, metadata with warning
 * thresholds; and fleet health, the dashboard's questions in one answer
 * (devices online now, customers with active devices, firmware versions in the
 * fleet, errors by kind and firmware version).
 */
import type { VitalsSample } from '../../store/store.js';
import { CSV_COLUMNS, METADATA, payload, shown, warnings } from '../../telemetry/vitals.js';
import { RequestTimeout } from '../../mqtt/requests.js';
import { guard } from '../access.js';
import { route, STREAMING, type Request, type Route } from '../app.js';
import { ApiError } from '../errors.js';
import { isoTime } from '../../store/store.js';

/** Particle keeps 30 days of vitals; a range without dates is the last 30 days. */
const RETENTION_MS = 30 * 24 * 3600 * 1000;

/** The latest date a range may name: the end of year 9999 (ISO 8601's four-digit years). */
const LAST_MS = Date.parse('9999-12-31T23:59:59.999Z');

function date(v: string | null, fallback: Date, name: string): Date {
  if (v === null || v === '') return fallback;
  const t = isoTime(v);
  if (t === null || !(t >= 0 && t <= LAST_MS)) throw ApiError.of(400, name + ' is not a date (ISO 8601) from 1970 to 9999');
  return new Date(t);
}

/**
 * Particle's `Accept: text/csv` form of the history: a row per sample, a column per vital (its dotted
 * name; an enumerated vital by its name, as in the JSON), empty where the sample lacks it.
 */
function csv(req: Request, deviceId: string, samples: readonly VitalsSample[]): typeof STREAMING {
  const rows = samples.map((s) => [s.at.toISOString(), deviceId, ...CSV_COLUMNS.map((c) => shown(c, s.values[c]))]);
  // Dates, a device id, numbers and names from the protocol's tables: no field needs quoting.
  const text = [['updated_at', 'deviceID', ...CSV_COLUMNS], ...rows].map((r) => r.join(',')).join('\r\n') + '\r\n';
  req.res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  req.res.end(text);
  return STREAMING;
}

/** A history's range from start_date and end_date: by default the retention's days up to now. */
function range(q: URLSearchParams): { from: Date; to: Date } {
  const to = date(q.get('end_date'), new Date(), 'end_date');
  const from = date(q.get('start_date'), new Date(to.getTime() - RETENTION_MS), 'start_date');
  if (from > to) throw ApiError.of(400, 'start_date is after end_date');
  return { from, to };
}

function diagnostics(prefix: string): Route[] {
  const P = prefix + '/diagnostics/:id';
  return [
    route('POST', P + '/update', guard.device('device.vitals.refresh'), async (req, ctx, a) => {
      const d = await ctx.store.getDevice(a.device!.id);
      if (!d?.online) throw ApiError.of(404, 'Device is not connected');
      try {
        await ctx.requests.ask(d.id, { op: 'vitals' }, ctx.callTimeoutMs);
      } catch (e) {
        if (e instanceof RequestTimeout) throw ApiError.of(408, 'Timed out.');
        throw e;
      }
      // The device sends its vitals as a separate message: the refresh is asynchronous, as Particle's.
      return { status: 202, body: { ok: true } };
    }),
    route('GET', P + '/last', guard.device('device.vitals.view'), async (req, ctx, a) => {
      const s = await ctx.store.latestVitals(a.device!.id);
      if (!s) throw ApiError.of(404, 'No vitals from this device yet');
      return { diagnostics: { updated_at: s.at.toISOString(), deviceID: a.device!.id, payload: payload(s.values), warnings: warnings(s.values) } };
    }),
    route('GET', P + '/metadata', guard.device('device.vitals.view'), () => ({ diagnostics_metadata: METADATA })),
    // The device's error reports one by one, with what fleet health sums away: the stack, the uptime, when.
    // Not Particle's (its device vitals have no error reports); beside the diagnostics, with their range.
    route('GET', P + '/errors', guard.device('device.vitals.view'), async (req, ctx, a) => {
      const q = req.url.searchParams;
      const { from, to } = range(q);
      const limit = q.has('limit') ? Number(q.get('limit')) : 100;
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw ApiError.of(400, 'limit must be a whole number from 1 to 1000');
      const reports = await ctx.store.deviceErrors(a.device!.id, from, to, limit);
      return {
        errors: reports.map((e) => ({
          at: e.at.toISOString(), kind: e.source, name: e.name, message: e.message, stack: e.stack, count: e.count, uptime: e.uptime, firmware_version: e.firmwareVersion,
        })),
      };
    }),
    route('GET', P, guard.device('device.vitals.view'), async (req, ctx, a) => {
      const { from, to } = range(req.url.searchParams);
      const samples = await ctx.store.vitalsHistory(a.device!.id, from, to);
      if (/\btext\/csv\b/i.test(req.headers.accept ?? '')) return csv(req, a.device!.id, samples);
      return { diagnostics: samples.map((s) => ({ updated_at: s.at.toISOString(), deviceID: a.device!.id, payload: payload(s.values) })) };
    }),
  ];
}

/** A customer counts as active when one of their devices was heard within this. */
const ACTIVE_MS = 24 * 3600 * 1000;

export const diagnosticsRoutes: Route[] = [
  ...diagnostics('/v1'),
  ...diagnostics('/v1/products/:product'),
  route('GET', '/v1/products/:product/fleet_health', guard.product('fleet.view'), async (req, ctx, a) => {
    const productId = a.product!.productId;
    const devices = await ctx.store.listDevices(productId);
    const vitals = await ctx.store.latestVitalsOfProduct(productId);
    const now = Date.now();
    const versions = new Map<string, number>();
    const activeCustomers = new Set<string>();
    let warned = 0;
    for (const d of devices) {
      const v = d.firmwareVersion === null ? 'unknown' : String(d.firmwareVersion);
      versions.set(v, (versions.get(v) ?? 0) + 1);
      if (d.customerId && (d.online || (d.lastHeard && now - d.lastHeard.getTime() < ACTIVE_MS))) activeCustomers.add(d.customerId);
      const s = vitals.get(d.id);
      if (s && warnings(s.values).length > 0) warned++;
    }
    const errors = await ctx.store.errorsByProduct(productId);
    return {
      devices: { total: devices.length, online: devices.filter((d) => d.online).length, with_vitals_warnings: warned },
      customers: { active: activeCustomers.size, total: (await ctx.store.listCustomers(productId)).length },
      firmware_versions: [...versions].map(([version, count]) => ({ version: version === 'unknown' ? null : Number(version), devices: count })).sort((x, y) => y.devices - x.devices),
      errors: errors.map((e) => ({ kind: e.source, name: e.name, message: e.message, firmware_version: e.firmwareVersion, count: e.count, devices: e.devices, last_at: e.lastAt.toISOString() })),
    };
  }),
];
