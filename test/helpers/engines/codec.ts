/** Hex and text escaping of the Duktape host's line protocol (see firmware/hosts/README.md). */

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) throw new Error(`bad hex from host: ${hex.slice(0, 40)}`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Escapes `\`, LF and CR so any text fits on one line. */
export function escapeText(s: string): string {
  return s.replace(/[\\\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : '\\r'));
}

export function unescapeText(s: string): string {
  return s.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c));
}
