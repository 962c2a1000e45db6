/**
 * The three ways a product's end users sign in (particle-dashboard.md,
 * "Authenticating your users"); a product chooses one in its settings
 * (`customer_auth`), and the steps of the other two are refused for it.
 *
 * - simple: the product's app signs customers up with an email and a
 *   password through its OAuth client; they log in with the password grant.
 * - two_legged: the product's own server makes customers without a password
 *   and gets tokens for them (client credentials, scope customer=<email>).
 * - oauth: a Flotilla user links their account to the product's website
 *   (authorization code with PKCE, a web client's registered redirect URI).
 */
export const CUSTOMER_AUTH_MODES = ['simple', 'two_legged', 'oauth'] as const;
export type CustomerAuthMode = (typeof CUSTOMER_AUTH_MODES)[number];

/** The product setting that holds the mode. */
export const CUSTOMER_AUTH_SETTING = 'customer_auth';

/** A product that never chose signs its customers in the simple way (Particle's default). */
export const DEFAULT_CUSTOMER_AUTH: CustomerAuthMode = 'simple';

export type SigninStep =
  /** POST /v1/products/:p/customers with a password. */
  | 'signup_password'
  /** POST /v1/products/:p/customers without one (no_password). */
  | 'signup_no_password'
  /** The password grant at /oauth/token with the product's client. */
  | 'password_grant'
  /** client_credentials with scope customer=<email>. */
  | 'customer_token'
  /** /oauth/authorize and the authorization_code grant. */
  | 'authorization_code';

const STEPS: Record<CustomerAuthMode, readonly SigninStep[]> = {
  simple: ['signup_password', 'password_grant'],
  two_legged: ['signup_no_password', 'customer_token'],
  oauth: ['authorization_code'],
};

export function isCustomerAuthMode(v: unknown): v is CustomerAuthMode {
  return typeof v === 'string' && (CUSTOMER_AUTH_MODES as readonly string[]).includes(v);
}

/** The mode in a product's settings (the default when unset). */
export function customerAuthMode(settings: { [key: string]: unknown }): CustomerAuthMode {
  const v = settings[CUSTOMER_AUTH_SETTING];
  return isCustomerAuthMode(v) ? v : DEFAULT_CUSTOMER_AUTH;
}

/** null when the product's mode allows the step; else why not, for the caller's refusal. */
export function stepRefusal(mode: CustomerAuthMode, step: SigninStep): string | null {
  if (STEPS[mode].includes(step)) return null;
  return `This product signs its customers in with ${describe(mode)}; ${describeStep(step)} is not allowed`;
}

function describe(mode: CustomerAuthMode): string {
  return mode === 'simple' ? 'simple authentication (email and password)' : mode === 'two_legged' ? "two-legged authentication (the product's server)" : 'OAuth 2.0 (authorization code)';
}

function describeStep(step: SigninStep): string {
  switch (step) {
    case 'signup_password':
      return 'a customer with a password';
    case 'signup_no_password':
      return 'a customer without a password';
    case 'password_grant':
      return 'the password grant';
    case 'customer_token':
      return 'a customer token by client credentials';
    case 'authorization_code':
      return 'the authorization code flow';
  }
}
