/**
 * The one error type of the protocol boundary. Everything in `protocol/` that
 * refuses input throws (or returns) a ProtocolError; nothing else escapes.
 *
 * Written as an ES5 constructor rather than `class extends Error`: a class
 * lowered to ES5 loses its prototype when it extends a builtin, so
 * `instanceof ProtocolError` would be false on the engines we ship to.
 */
export type ProtocolErrorCode =
  | 'cbor' // bytes are not well-formed CBOR of the subset we accept
  | 'layout' // well-formed CBOR, but not the shape of any message kind
  | 'limit' // a field exceeds a limit (LIMITS)
  | 'value' // a field has a value outside its domain (bad name, unknown enum)
  | 'topic'; // a topic string or a topic part (device id, name) is refused

export interface ProtocolError {
  readonly name: 'ProtocolError';
  readonly code: ProtocolErrorCode;
  readonly message: string;
  /** Dotted path of the offending field, e.g. `hello.variables[2].name`. */
  readonly field?: string;
  /** The limit that was exceeded, for code `limit`. */
  readonly limit?: number;
  readonly stack?: string;
}

interface ProtocolErrorConstructor {
  new (code: ProtocolErrorCode, message: string, field?: string, limit?: number): ProtocolError;
  (code: ProtocolErrorCode, message: string, field?: string, limit?: number): ProtocolError;
  readonly prototype: ProtocolError;
}

function ProtocolErrorImpl(
  this: { code: string; message: string; field?: string; limit?: number; stack?: string },
  code: ProtocolErrorCode,
  message: string,
  field?: string,
  limit?: number,
): void {
  this.code = code;
  this.message = message;
  if (field !== undefined) this.field = field;
  if (limit !== undefined) this.limit = limit;
  // No captured stack: the error is about the input, not a code location, and
  // capturing one costs ~50 µs, which a flood of malformed packets would pay.
  this.stack = 'ProtocolError: ' + message;
}
ProtocolErrorImpl.prototype = Object.create(Error.prototype);
ProtocolErrorImpl.prototype.constructor = ProtocolErrorImpl;
ProtocolErrorImpl.prototype.name = 'ProtocolError';

export const ProtocolError = ProtocolErrorImpl as unknown as ProtocolErrorConstructor;

export function isProtocolError(e: unknown): e is ProtocolError {
  return e instanceof ProtocolError;
}

/** Throws a ProtocolError. A function so hot paths carry no `new` expression inline. */
export function fail(code: ProtocolErrorCode, message: string, field?: string, limit?: number): never {
  throw new ProtocolError(code, message, field, limit);
}
