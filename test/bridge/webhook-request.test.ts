/**
 * What a webhook sends for one event and what its response becomes
 * (bridge/src/integrations/request.ts, template.ts): pure functions, exact
 * outputs. Delivery over HTTP is webhooks.test.ts.
 */
import assert from 'node:assert/strict';
import type { Integration } from '../../bridge/src/store/store.js';
import { pieces, requestFor, responseData } from '../../bridge/src/integrations/request.js';
import { TargetRefused, targetPolicy } from '../../bridge/src/integrations/targets.js';
import { eventView, plainJson, render, RENDER_LIMITS, templateProblem, type TemplateVars } from '../../bridge/src/integrations/template.js';

const DEVICE = '0123456789abcdef01234567';
const AT = '2026-11-23T10:00:00.000Z';
const vars = (data: string, name = 'climate'): TemplateVars => ({
  PARTICLE_EVENT_NAME: name, PARTICLE_EVENT_VALUE: data, PARTICLE_DEVICE_ID: DEVICE, PARTICLE_PUBLISHED_AT: AT, PRODUCT_ID: '7', PRODUCT_VERSION: '3', PRODUCT_USER_ID: 'u1',
});
const DEFAULTS = { event: 'climate', data: '{"room":"hall & stairs","temp":21.5}', published_at: AT, coreid: DEVICE };
const DATA = DEFAULTS.data;

function hook(over: Partial<Integration>): Integration {
  return {
    id: 'i1', productId: 7, userId: null, orgId: null, name: 'h', event: 'climate', deviceId: null, url: 'http://example.test/in', requestType: 'POST', headers: {},
    json: null, form: null, body: null, query: null, auth: null, noDefaults: false, rejectUnauthorized: true, responseTemplate: null,
    responseTopic: null, errorResponseTopic: null, enabled: true, failures: 0, createdAt: new Date(0), ...over,
  };
}
const form = (body: string | undefined) => Object.fromEntries(new URLSearchParams(body ?? ''));

describe('webhook requests (pure)', () => {
  describe('templates', () => {
    it('sees Particle names, their SPARK_ aliases and the fields of JSON data; a field never shadows a Particle name', () => {
      const view = eventView(vars('{"temp":21.5,"PARTICLE_DEVICE_ID":"spoofed","SPARK_CORE_ID":"spoofed","a":{"b":[1,2]}}'));
      assert.equal(render('{{temp}} {{PARTICLE_DEVICE_ID}} {{SPARK_CORE_ID}} {{SPARK_EVENT_NAME}} {{a.b.1}}', view), `21.5 ${DEVICE} ${DEVICE} climate 2`);
      assert.equal(render('{{#a.b}}[{{.}}]{{/a.b}}{{^missing}}none{{/missing}}', view), '[1][2]none');
    });
    it("inside a section too, data cannot stand for Particle's names (dropped at every depth)", () => {
      const view = eventView(vars('{"r":{"PARTICLE_DEVICE_ID":"spoofed","SPARK_CORE_ID":"spoofed","n":1},"l":[{"PRODUCT_ID":"9"}]}'));
      assert.equal(render('{{#r}}{{PARTICLE_DEVICE_ID}} {{SPARK_CORE_ID}} {{n}}{{/r}} {{#l}}{{PRODUCT_ID}}{{/l}}', view), `${DEVICE} ${DEVICE} 1 7`);
    });
    it('finds no functions: prototype methods of arrays are not there to call', () => {
      const view = eventView(vars('{"l":[1,2],"o":{}}'));
      assert.equal(render('[{{l.forEach}}{{l.map}}{{o.toString}}{{l.length}}]', view), '[2]');
      assert.equal(Object.getPrototypeOf((plainJson('[1]') as unknown[])), null);
      assert.ok(Array.isArray(plainJson('[1]')), 'still an array for mustache');
    });
    it('stops a render past its limits (sections over a large array), and the next render starts afresh', () => {
      const view = eventView(vars(JSON.stringify({ a: Array.from({ length: 100 }, (_, i) => i) })));
      assert.throws(() => render('{{#a}}{{#a}}{{#a}}x{{/a}}{{/a}}{{/a}}', view), new RegExp(`more than ${RENDER_LIMITS.visits} steps`));
      assert.equal(render('{{#a}}.{{/a}}', view).length, 100);
      const big = eventView(vars(JSON.stringify({ s: 'y'.repeat(900) })));
      assert.throws(() => render('{{#a}}{{#a}}{{s}}{{/a}}{{/a}}', { ...big, a: Array.from({ length: 100 }, () => 0) }), /renders to more than/);
    });
    it('data that is not a JSON object adds no names', () => {
      for (const data of ['21.5', '[1,2]', '{not json', '']) assert.equal(render('<{{temp}}>', eventView(vars(data))), '<>');
    });
    it('escapes {{x}} by where it lands, never {{{x}}}; unknown and prototype names render empty', () => {
      const view = eventView(vars('{"t":"a&b \\"c\\""}'));
      assert.equal(render('{{t}}|{{{t}}}', view), 'a&amp;b &quot;c&quot;|a&b "c"');
      assert.equal(render('{{t}}', view, encodeURIComponent), 'a%26b%20%22c%22');
      assert.equal(render('{{nothing}}{{constructor}}{{toString}}{{t.constructor}}', view), '');
    });
    it('JSON keeps "__proto__" as a plain field and gives objects no prototype', () => {
      const v = plainJson('{"__proto__":{"x":1},"o":{}}') as Record<string, unknown>;
      assert.equal(Object.getPrototypeOf(v), null);
      assert.deepEqual(Object.keys(v), ['__proto__', 'o']);
      assert.equal(Object.getPrototypeOf(v.o), null);
      assert.equal(({} as Record<string, unknown>).x, undefined);
      assert.equal(plainJson('nope'), undefined);
    });
    it('reports a template that does not parse', () => {
      assert.equal(templateProblem('{{a}} {{#b}}x{{/b}}'), null);
      assert.match(templateProblem('{{#b}}x') ?? '', /Unclosed section "b"/);
      assert.match(templateProblem('{{a') ?? '', /Unclosed tag/);
    });
  });

  describe('requestFor', () => {
    it("none of json, form or body: Particle's default data as a form", () => {
      const r = requestFor(hook({}), vars(DATA));
      assert.equal(r.method, 'POST');
      assert.equal(r.url, 'http://example.test/in');
      assert.equal(r.headers['content-type'], 'application/x-www-form-urlencoded');
      assert.deepEqual(form(r.body), DEFAULTS);
      assert.equal(r.rejectUnauthorized, true);
    });
    it('noDefaults and nothing else: no body at all', () => {
      const r = requestFor(hook({ noDefaults: true }), vars(DATA));
      assert.equal(r.body, undefined);
      assert.equal(r.headers['content-type'], undefined);
    });
    it('a json object: its rendered strings over the default data; with noDefaults, only its own', () => {
      const json = { temp: '{{temp}}', room: '{{room}}', '{{PARTICLE_EVENT_NAME}}_n': 1, list: ['{{SPARK_CORE_ID}}', true], data: 'mine' };
      const r = requestFor(hook({ json }), vars(DATA));
      assert.equal(r.headers['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(r.body!), { ...DEFAULTS, temp: '21.5', room: 'hall & stairs', climate_n: 1, list: [DEVICE, true], data: 'mine' });
      const n = requestFor(hook({ json, noDefaults: true }), vars(DATA));
      assert.deepEqual(JSON.parse(n.body!), { temp: '21.5', room: 'hall & stairs', climate_n: 1, list: [DEVICE, true], data: 'mine' });
    });
    it('a json template as one string: {{x}} escaped for a JSON string, {{{x}}} as it is; output that is not JSON is sent as it rendered', () => {
      const r = requestFor(hook({ json: '{"t": {{{temp}}}, "d": "{{PARTICLE_EVENT_VALUE}}"}', noDefaults: true }), vars(DATA));
      assert.deepEqual(JSON.parse(r.body!), { t: 21.5, d: DATA });
      const merged = requestFor(hook({ json: '{"t": {{{temp}}}}' }), vars(DATA));
      assert.deepEqual(JSON.parse(merged.body!), { ...DEFAULTS, t: 21.5 });
      const broken = requestFor(hook({ json: '{"t": {{{missing}}}}' }), vars(DATA));
      assert.equal(broken.body, '{"t": }');
    });
    it('a form: its rendered fields over the default data', () => {
      const r = requestFor(hook({ form: { t: '{{{temp}}}', event: 'mine' } }), vars(DATA));
      assert.deepEqual(form(r.body), { ...DEFAULTS, t: '21.5', event: 'mine' });
    });
    it('a body: sent as it renders, HTML-escaped {{x}}, no default data', () => {
      const r = requestFor(hook({ body: '{{room}} / {{{room}}}', requestType: 'PUT' }), vars(DATA));
      assert.equal(r.body, 'hall &amp; stairs / hall & stairs');
      assert.equal(r.method, 'PUT');
    });
    it('GET and DELETE: no body; the default data and the query in the query string', () => {
      const r = requestFor(hook({ requestType: 'GET', query: { t: '{{temp}}', event: 'mine' }, json: { ignored: true } }), vars(DATA));
      assert.equal(r.body, undefined);
      const q = Object.fromEntries(new URL(r.url).searchParams);
      assert.deepEqual(q, { ...DEFAULTS, t: '21.5', event: 'mine' });
      const d = requestFor(hook({ requestType: 'DELETE', noDefaults: true }), vars(DATA));
      assert.equal(d.url, 'http://example.test/in');
      assert.equal(d.body, undefined);
    });
    it('POST with a query: the query in the URL, the default data in the body', () => {
      const r = requestFor(hook({ url: 'http://example.test/in?k=1', query: { room: '{{room}}' } }), vars(DATA));
      assert.equal(r.url, 'http://example.test/in?k=1&room=hall+%26+stairs');
      assert.deepEqual(form(r.body), DEFAULTS);
    });
    it('a URL template: {{x}} percent-encoded, so a value cannot change the host or path', () => {
      const r = requestFor(hook({ url: 'http://example.test/rooms/{{room}}/{{PARTICLE_DEVICE_ID}}' }), vars('{"room":"../admin?x=1#"}'));
      assert.equal(r.url, `http://example.test/rooms/..%2Fadmin%3Fx%3D1%23/${DEVICE}`);
    });
    it('a URL template whose value is exactly . or .. in a path segment is refused: a URL resolves them, moving the request (and its credentials) on the target', () => {
      for (const room of ['..', '.']) {
        assert.throws(() => requestFor(hook({ url: 'http://example.test/rooms/{{room}}/in', auth: { username: 'u', password: 'p' } }), vars(JSON.stringify({ room }))), /has a "\." or "\.\." path segment/, room);
        assert.throws(() => requestFor(hook({ url: 'http://example.test/rooms/{{room}}' }), vars(JSON.stringify({ room }))), /path segment/, room + ' at the end');
      }
      // A raw {{{value}}} cannot hide one from the check: the URL parser reads a backslash as a slash and drops tabs and line breaks.
      for (const room of ['..\\..\\admin', '.\n./admin', '.\t.']) {
        assert.throws(() => requestFor(hook({ url: 'http://example.test/rooms/{{{room}}}/in' }), vars(JSON.stringify({ room }))), /path segment/, JSON.stringify(room));
      }
      // ...and trims spaces and control characters at the end of the URL.
      for (const room of ['.. ', '..\u0001', '.%2E ']) {
        assert.throws(() => requestFor(hook({ url: 'http://example.test/rooms/{{{room}}}' }), vars(JSON.stringify({ room }))), /path segment/, JSON.stringify(room));
      }
      // Dots inside a segment, or in the query, move nothing.
      assert.equal(requestFor(hook({ url: 'http://example.test/rooms/v{{room}}/in' }), vars('{"room":".."}')).url, 'http://example.test/rooms/v../in');
      assert.equal(requestFor(hook({ url: 'http://example.test/rooms/{{room}}/in' }), vars('{"room":"1.2"}')).url, 'http://example.test/rooms/1.2/in');
      assert.equal(requestFor(hook({ url: 'http://example.test/in?r={{room}}', noDefaults: true, requestType: 'GET' }), vars('{"room":".."}')).url, 'http://example.test/in?r=..');
    });
    it('auth as HTTP Basic (templates), unless a header already says Authorization; headers rendered, names lowercase', () => {
      const r = requestFor(hook({ auth: { username: 'u-{{PRODUCT_ID}}', password: 'p:{{{room}}}' }, headers: { 'X-Room': '{{{room}}}' } }), vars(DATA));
      assert.equal(r.headers.authorization, 'Basic ' + Buffer.from('u-7:p:hall & stairs').toString('base64'));
      assert.equal(r.headers['x-room'], 'hall & stairs');
      const own = requestFor(hook({ auth: { username: 'u', password: 'p' }, headers: { Authorization: 'Bearer t' } }), vars(DATA));
      assert.equal(own.headers.authorization, 'Bearer t');
    });
    it('rejectUnauthorized passes through', () => {
      assert.equal(requestFor(hook({ url: 'https://example.test/', rejectUnauthorized: false }), vars(DATA)).rejectUnauthorized, false);
    });
    it('a lone surrogate in the data becomes U+FFFD in the URL, not an error', () => {
      const r = requestFor(hook({ url: 'http://example.test/{{room}}' }), vars('{"room":"a\\ud800b"}'));
      assert.equal(r.url, 'http://example.test/a%EF%BF%BDb');
    });
    it('a URL template that renders to no URL throws (the engine reports a failed delivery)', () => {
      assert.throws(() => requestFor(hook({ url: '{{{where}}}' }), vars('{"where":"not a url"}')), /Invalid URL/);
    });
    it('a header whose value the data fills with a line break or a control character throws (no request, nothing held against the endpoint)', () => {
      const message = { message: 'header X-V holds a line break or a character a header cannot carry once filled in' };
      assert.throws(() => requestFor(hook({ headers: { 'X-V': '{{{v}}}' } }), vars('{"v":"a\\r\\nX-Injected: 1"}')), message);
      assert.throws(() => requestFor(hook({ headers: { 'X-V': '{{v}}' } }), vars('{"v":"a\\u0000b"}')), message);
      assert.throws(() => requestFor(hook({ headers: { 'X-V': '{{v}}' } }), vars('{"v":"snow \u2603"}')), message);
      // Tab, Latin-1 and visible ASCII are a header's to carry.
      assert.equal(requestFor(hook({ headers: { 'X-V': '{{{v}}}' } }), vars('{"v":"a\\tb é ~"}')).headers['x-v'], 'a\tb é ~');
    });
  });

  describe('responseData', () => {
    it('no template: the response as it came', () => {
      assert.equal(responseData({ responseTemplate: null }, '{"a":1}'), '{"a":1}');
    });
    it('a template over a JSON response (objects and arrays), mustache escaping', () => {
      const t = { responseTemplate: '{{main.temp}} in {{name}} / {{{name}}}' };
      assert.equal(responseData(t, '{"main":{"temp":7},"name":"Oslo & co"}'), '7 in Oslo &amp; co / Oslo & co');
      assert.equal(responseData({ responseTemplate: '{{#.}}{{id}},{{/.}}' }, '[{"id":1},{"id":2}]'), '1,2,');
    });
    it('a template that cannot render the response (past the limits) leaves it as it came', () => {
      const response = JSON.stringify({ a: Array.from({ length: 100 }, (_, i) => i) });
      assert.equal(responseData({ responseTemplate: '{{#a}}{{#a}}{{#a}}x{{/a}}{{/a}}{{/a}}' }, response), response);
      assert.equal(responseData({ responseTemplate: '[{{a.forEach}}]' }, response), '[]');
    });
    it('a response that is not JSON (or is a JSON scalar) goes as it came', () => {
      assert.equal(responseData({ responseTemplate: '{{a}}' }, 'plain text'), 'plain text');
      assert.equal(responseData({ responseTemplate: '{{a}}' }, '42'), '42');
    });
  });

  describe('pieces', () => {
    const bytes = (x: string) => Buffer.byteLength(x);
    it('cuts ASCII every 512 bytes', () => {
      assert.deepEqual(pieces('a'.repeat(1100), 512, 102400).map((p) => p.length), [512, 512, 76]);
      assert.deepEqual(pieces('', 512, 102400), []);
    });
    it('counts UTF-8 bytes and never cuts inside a character (3-byte CJK, 4-byte emoji)', () => {
      const cjk = pieces('中'.repeat(600), 512, 102400);
      assert.deepEqual(cjk.map(bytes), [510, 510, 510, 270]);
      assert.equal(cjk.join(''), '中'.repeat(600));
      const emoji = pieces('x' + '😀'.repeat(200), 512, 102400);
      assert.ok(emoji.every((p) => bytes(p) <= 512 && !/[\ud800-\udbff]$/.test(p)), 'no piece ends in half a surrogate pair');
      assert.equal(emoji.join(''), 'x' + '😀'.repeat(200));
    });
    it('stops at the total limit, at a whole character', () => {
      const p = pieces('é'.repeat(100), 512, 101);
      assert.deepEqual([p.length, bytes(p.join(''))], [1, 100]);
    });
  });

  describe('targets', () => {
    const none = targetPolicy([]);
    it('refuses local, private and reserved addresses, IPv4-mapped ones too; public ones go', () => {
      for (const a of ['127.0.0.1', '127.9.9.9', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255', '::1', '::', 'fd00::1', 'fe80::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:a9fe:a9fe',
        // IPv4 in IPv6 forms a gateway unwraps: NAT64 (before, 64:ff9b::7f00:1 was taken), 6to4, Teredo, IPv4-compatible.
        '64:ff9b::7f00:1', '64:ff9b::a9fe:a9fe', '64:ff9b:1::1', '2002:7f00:1::1', '2001:0:4136:e378::1', '::7f00:1', '2001:db8::1', '100::1']) {
        assert.match(none.refusal(a) ?? 'allowed', /is a local, private or reserved address/, a);
      }
      for (const a of ['8.8.8.8', '172.32.0.1', '192.169.0.1', '100.128.0.1', '2001:4860:4860::8888', '::ffff:8.8.8.8']) assert.equal(none.refusal(a), null, a);
    });
    it('allows what the operator lists, and only that', () => {
      const some = targetPolicy(['10.0.0.0/8', '127.0.0.1', 'fd00::/8']);
      for (const a of ['10.200.0.1', '127.0.0.1', '::ffff:127.0.0.1', 'fd12::1']) assert.equal(some.refusal(a), null, a);
      for (const a of ['127.0.0.2', '192.168.0.1', '::1']) assert.ok(some.refusal(a), a);
    });
    it('refuses a range that is not one, naming it', () => {
      for (const r of ['10.0.0.0/33', 'example.com', '10.0.0.0/8/1', '::1/129', '10.0.0.0/', '10.0.0.0/x']) {
        assert.throws(() => targetPolicy([r]), { message: 'webhooks.allowTargets: "' + r + '" is not an address or a range like 10.0.0.0/8' });
      }
    });
    it('checks the addresses a name resolves to', async () => {
      const resolve = (p: ReturnType<typeof targetPolicy>, all: boolean) =>
        new Promise<Error | null>((r) => p.lookup('localhost', { all } as never, (e) => r(e)));
      for (const all of [false, true]) {
        const e = await resolve(none, all);
        assert.ok(e instanceof TargetRefused, String(e));
        // Named by the name it was given: the address would map the bridge's internal names for whoever reads hook-error.
        assert.match(e.message, /^webhook target localhost resolves to a local, private or reserved address/);
        assert.doesNotMatch(e.message, /127\.0\.0\.1|::1/);
        assert.equal(await resolve(targetPolicy(['127.0.0.0/8', '::1']), all), null);
      }
    });
  });
});
