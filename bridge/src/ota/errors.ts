/** The OTA module's one error type; the HTTP app turns it into 400, 404, 409 or 413. */
export type OtaErrorCode = 'invalid' | 'not_found' | 'conflict' | 'too_large';

export class OtaError extends Error {
  constructor(
    readonly code: OtaErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'OtaError';
  }
}
