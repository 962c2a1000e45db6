/** The OTA module's one error type; the HTTP app turns it into 400, 404 or 409. */
export type OtaErrorCode = 'invalid' | 'not_found' | 'conflict';

export class OtaError extends Error {
  constructor(
    readonly code: OtaErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'OtaError';
  }
}
