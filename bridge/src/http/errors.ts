/**
 * The HTTP API's one error type, thrown from anywhere and turned into a
 * response in one place (app.ts). Particle's shapes: `{error, error_description}`
 * for OAuth, `{ok: false, error}` for the rest; never a stack trace.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: { error: string; error_description?: string } | { ok: false; error: string },
    readonly headers: Record<string, string> = {},
  ) {
    super('error' in body ? body.error : 'error');
  }

  /** An OAuth error (RFC 6749 §5.2). */
  static oauth(status: number, error: string, description: string): ApiError {
    return new ApiError(status, { error, error_description: description });
  }

  /** Any other refusal. */
  static of(status: number, error: string): ApiError {
    return new ApiError(status, { ok: false, error });
  }
}
