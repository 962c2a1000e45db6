/**
 * The HTTP API's one error type, thrown from anywhere and turned into a
 * response in one place (app.ts). Particle's shapes: `{error, error_description}`
 * for OAuth, `{ok: false, error}` for the rest; never a stack trace.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: { error: string; error_description?: string } | Refusal,
    readonly headers: Record<string, string> = {},
  ) {
    super('error' in body ? body.error : 'error');
  }

  /** An OAuth error (RFC 6749 §5.2). */
  static oauth(status: number, error: string, description: string): ApiError {
    // RFC 6749 §5.2: a 401 invalid_client names the scheme the client authenticates with.
    return new ApiError(status, { error, error_description: description }, status === 401 && error === 'invalid_client' ? { 'www-authenticate': 'Basic realm="flotilla"' } : {});
  }

  /** Any other refusal. */
  static of(status: number, error: string, headers?: Record<string, string>): ApiError {
    return new ApiError(status, refusal(error), headers);
  }
}

/**
 * Particle's `{ok: false, error}`, with the same words in `error_description`:
 * particle-api-js and particle-cli show a refusal's reason only from that field
 * (otherwise just "HTTP error 403 from <url>").
 */
export type Refusal = { ok: false; error: string; error_description: string };

export function refusal(error: string): Refusal {
  return { ok: false, error, error_description: error };
}
