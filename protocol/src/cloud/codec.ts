/**
 * The cloud side's codec: `encode(kind, body)` and `decode(bytes)` over cbor-x.
 *
 * cbor-x is fast but lenient (it accepts invalid UTF-8, tags, maps, indefinite
 * lengths); every input first passes the core's strict scanner, so the bridge
 * refuses exactly what the firmware refuses, with the same message.
 */
import { Decoder, Encoder, type Options } from 'cbor-x';
import { fail } from '../core/errors.js';
import { fromWire, toWire, WireValue } from '../core/layout.js';
import type { Kind, Message, Messages } from '../core/messages.js';
import { scanCbor } from '../core/cbor-scan.js';
import { validate } from '../core/validate.js';

// Plain RFC 8949 items only: no record extension, no typed-array tags, shortest heads.
const encoder = new Encoder({
  useRecords: false,
  tagUint8Array: false,
  variableMapSize: true,
  pack: false,
  structuredClone: false,
});
// int64AsNumber: an integer with an 8-byte head (valid CBOR, though our encoders write the shortest
// head) is a number, as on the firmware; cbor-x's default, a BigInt, failed every check after it.
// The scanner has bounded it to ±(2^53 - 1), so the number is exact. (The option is in cbor-x's
// README, not in its type declarations.)
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true, structuredClone: false, int64AsNumber: true } as Options);

/** Encodes a message body of `kind`; throws a ProtocolError if it breaks the layout or a limit. */
export function encode<K extends Kind>(kind: K, body: Messages[K]): Uint8Array {
  const wire = toWire(kind, body);
  const problem = validate(kind, body);
  if (problem) throw problem;
  return encoder.encode(wire);
}

/** Decodes and validates one message; throws a ProtocolError for anything else. */
export function decode(bytes: Uint8Array): Message {
  scanCbor(bytes);
  let value: WireValue;
  try {
    value = decoder.decode(bytes) as WireValue;
  } catch (e) {
    // Unreachable after scanCbor; kept so a cbor-x surprise still surfaces as our error.
    return fail('cbor', 'malformed CBOR: ' + (e as Error).message);
  }
  const msg = fromWire(value);
  const problem = validate(msg.kind, msg as never);
  if (problem) throw problem;
  return msg;
}
