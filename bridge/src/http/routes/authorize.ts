/**
 * OAuth 2.0 authorization endpoint (RFC 6749 §4.1, PKCE RFC 7636 S256) for a
 * product's web clients, in products whose customers sign in with OAuth
 * (customers/modes.ts): a Flotilla user signs in on a minimal consent page
 * and links their account to the product's website, which gets a one-minute
 * code for its registered redirect URI, to exchange at /oauth/token.
 *
 * An unknown client or a redirect URI it did not register is answered here
 * with an error page, never by redirecting (§4.1.2.1); anything else wrong
 * goes back to the client's redirect URI as `error=...` with its state.
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { route, STREAMING, type ApiContext, type Request, type Route } from '../app.js';
import { guard } from '../access.js';
import type { Fields } from '../body.js';
import { StoreError, type OAuthClient, type Product } from '../../store/store.js';
import { customerAuthMode, stepRefusal } from '../../customers/modes.js';
import { challengeProblem } from '../../customers/pkce.js';

/** How long a code waits for its exchange: long enough for a redirect, short for a thief. */
const CODE_TTL_SECONDS = 60;

/** The request's parameters, from the query (GET) or the form (POST: the page sends them back). */
interface AuthRequest {
  clientId: string;
  redirectUri: string;
  responseType: string;
  state: string;
  codeChallenge: string;
  codeChallengeMethod: string;
}

function params(from: Fields | URLSearchParams): AuthRequest {
  const get = (k: string): string => {
    const v = from instanceof URLSearchParams ? from.get(k) : from[k];
    return typeof v === 'string' ? v : '';
  };
  return {
    clientId: get('client_id'), redirectUri: get('redirect_uri'), responseType: get('response_type'), state: get('state'),
    codeChallenge: get('code_challenge'), codeChallengeMethod: get('code_challenge_method'),
  };
}

const escape = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function send(res: ServerResponse, status: number, html: string): typeof STREAMING {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // Not in a frame (clickjacking), no scripts, the form posts only here.
    'x-frame-options': 'DENY',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    'referrer-policy': 'no-referrer',
  });
  res.end(`<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>Sign in</title>
<style>body{font:16px system-ui,sans-serif;max-width:26em;margin:3em auto;padding:0 1em}input{display:block;width:100%;margin:.3em 0 1em;padding:.4em}button{padding:.5em 1.2em;margin-right:.5em}.e{color:#b00}</style></head><body>${html}</body></html>`);
  return STREAMING;
}

function errorPage(res: ServerResponse, status: number, message: string): typeof STREAMING {
  return send(res, status, `<h1>This sign-in link is not valid</h1><p class="e">${escape(message)}</p>`);
}

/** Back to the client: `?code=` or `?error=`, and its state. */
function redirect(res: ServerResponse, to: string, q: Record<string, string>): typeof STREAMING {
  const url = new URL(to);
  for (const [k, v] of Object.entries(q)) if (v !== '') url.searchParams.set(k, v);
  res.writeHead(302, { location: url.toString(), 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
  res.end();
  return STREAMING;
}

function consentPage(res: ServerResponse, status: number, a: AuthRequest, product: Product, client: OAuthClient, problem: string | null): typeof STREAMING {
  const hidden = Object.entries({
    client_id: a.clientId, redirect_uri: a.redirectUri, response_type: a.responseType, state: a.state, code_challenge: a.codeChallenge, code_challenge_method: a.codeChallengeMethod,
  })
    .map(([k, v]) => `<input type="hidden" name="${k}" value="${escape(v)}">`)
    .join('');
  return send(
    res,
    status,
    `<h1>Sign in to link your account</h1><p><b>${escape(client.name)}</b> (${escape(product.name)}) asks to use your account: your devices of this product, their variables, functions and events.</p>` +
      (problem ? `<p class="e">${escape(problem)}</p>` : '') +
      `<form method="post" action="/oauth/authorize">${hidden}<label>Username<input name="username" autocomplete="username" required></label>` +
      `<label>Password<input name="password" type="password" autocomplete="current-password" required></label>` +
      `<button name="decision" value="allow">Allow</button><button name="decision" value="deny" formnovalidate>Deny</button></form>`,
  );
}

type Checked = { ok: true; client: OAuthClient; product: Product } | { ok: false; reply: typeof STREAMING };

/** The checks both the page and the form's answer make: the client and its redirect URI, then the request itself. */
async function check(ctx: ApiContext, res: ServerResponse, a: AuthRequest): Promise<Checked> {
  const client = a.clientId ? await ctx.store.getClient(a.clientId) : null;
  if (!client) return { ok: false, reply: errorPage(res, 400, 'Unknown client_id') };
  if (!a.redirectUri || !client.redirectUris.includes(a.redirectUri)) return { ok: false, reply: errorPage(res, 400, 'redirect_uri is not one the client registered') };
  const back = (error: string, description: string): Checked => ({ ok: false, reply: redirect(res, a.redirectUri, { error, error_description: description, state: a.state }) });
  if (a.responseType !== 'code') return back('unsupported_response_type', 'response_type must be code');
  const product = client.productId !== null ? await ctx.store.getProduct(client.productId) : null;
  if (!product || client.type !== 'web') return back('unauthorized_client', "The authorization code flow is for a product's web client");
  const refusal = stepRefusal(customerAuthMode(product.settings), 'authorization_code');
  if (refusal) return back('unauthorized_client', refusal);
  const pkce = challengeProblem(a.codeChallenge, a.codeChallengeMethod);
  if (pkce) return back('invalid_request', pkce);
  return { ok: true, client, product };
}

export const authorizeRoutes: Route[] = [
  route('GET', '/oauth/authorize', guard.public('the consent page: the user signs in on it'), async (req: Request, ctx) => {
    const a = params(req.url.searchParams);
    const c = await check(ctx, req.res, a);
    return c.ok ? consentPage(req.res, 200, a, c.product, c.client, null) : c.reply;
  }),
  route('POST', '/oauth/authorize', guard.public('the consent form: the user name and password authenticate'), async (req: Request, ctx) => {
    const body = await req.body();
    const a = params(body);
    const c = await check(ctx, req.res, a);
    if (!c.ok) return c.reply;
    if (body.decision !== 'allow') return redirect(req.res, a.redirectUri, { error: 'access_denied', error_description: 'The user denied the request', state: a.state });
    // Passwords tried here count toward the same lock-out as the token endpoint's.
    const address = req.address;
    const username = typeof body.username === 'string' ? body.username : '';
    const limited = ctx.limiter.tokenRequest(address);
    const login = limited !== null ? { wait: limited } : await ctx.limiter.passwordCheck(address, username, () => ctx.store.verifyPassword(username, typeof body.password === 'string' ? body.password : ''));
    if ('wait' in login) return consentPage(req.res, 429, a, c.product, c.client, `Too many attempts; try again in ${login.wait} s`);
    const user = login.found;
    if (!user) return consentPage(req.res, 401, a, c.product, c.client, 'The username or password is not right');
    let customerId: string;
    try {
      customerId = (await ctx.store.linkedCustomer(c.product.id, user.id)).id;
    } catch (e) {
      if (e instanceof StoreError && e.code === 'conflict') return redirect(req.res, a.redirectUri, { error: 'access_denied', error_description: e.message, state: a.state });
      throw e;
    }
    const code = randomBytes(32).toString('base64url');
    await ctx.store.createAuthorizationCode({ code, clientId: c.client.id, customerId, redirectUri: a.redirectUri, codeChallenge: a.codeChallenge, ttlSeconds: CODE_TTL_SECONDS });
    await ctx.store.audit({
      at: new Date(), actorKind: 'user', actorId: user.id, action: 'oauth.authorize', resourceKind: 'product', resourceId: String(c.product.id), allowed: true, status: 200,
      reason: 'linked to client ' + c.client.id + ' as customer ' + customerId,
    });
    return redirect(req.res, a.redirectUri, { code, state: a.state });
  }),
];
