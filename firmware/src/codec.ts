/** Message encode/decode for the agent: the core's layouts and checks over the tiny codec. */
import { fromWire, Kind, Message, Messages, toWire, validate } from '@flotilla/protocol/core';
import { cborDecode, cborEncode } from './cbor.js';

/** Encodes a message body; throws the ProtocolError naming the field and limit it breaks. */
export function encodeMessage<K extends Kind>(kind: K, body: Messages[K]): Uint8Array {
  const wire = toWire(kind, body);
  const problem = validate(kind, body);
  if (problem) throw problem;
  return cborEncode(wire);
}

/** Decodes and validates one message; throws a ProtocolError for anything else. */
export function decodeMessage(bytes: Uint8Array): Message {
  const msg = fromWire(cborDecode(bytes));
  const problem = validate(msg.kind, msg as never);
  if (problem) throw problem;
  return msg;
}
