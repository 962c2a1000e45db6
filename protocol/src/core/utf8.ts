/**
 * UTF-8 helpers on plain arrays of bytes. ES5 only: no TextEncoder (missing on
 * QuickJS, JerryScript and Espruino), no String.prototype.codePointAt.
 */

/** Byte length of `s` in UTF-8, or -1 if `s` holds a lone surrogate (not encodable). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (d < 0xdc00 || d > 0xdfff) return -1;
      n += 4;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return -1;
    else n += 3;
  }
  return n;
}

/** Writes `s` as UTF-8 into `out` at `pos`; returns the position after it. `s` must have no lone surrogate. */
export function utf8Write(s: string, out: Uint8Array, pos: number): number {
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) out[pos++] = c;
    else if (c < 0x800) {
      out[pos++] = 0xc0 | (c >> 6);
      out[pos++] = 0x80 | (c & 63);
    } else if (c >= 0xd800 && c <= 0xdbff) {
      c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      out[pos++] = 0xf0 | (c >> 18);
      out[pos++] = 0x80 | ((c >> 12) & 63);
      out[pos++] = 0x80 | ((c >> 6) & 63);
      out[pos++] = 0x80 | (c & 63);
    } else {
      out[pos++] = 0xe0 | (c >> 12);
      out[pos++] = 0x80 | ((c >> 6) & 63);
      out[pos++] = 0x80 | (c & 63);
    }
  }
  return pos;
}

/**
 * Checks bytes[start, end) as UTF-8 (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF) and, with `read`, decodes them. Returns the text (''
 * without `read`), or the offset of the first bad byte. One pass for both: a
 * device runs it on every topic and text string it receives.
 */
export function utf8Decode(bytes: Uint8Array, start: number, end: number, read?: boolean): string | number {
  let s = '';
  let i = start;
  while (i < end) {
    const b = bytes[i];
    // Bytes after the first (need), the smallest code point of that length (min), the code point so far.
    const need = b < 0x80 ? 0 : b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : -1;
    if (need < 0) return i;
    let cp = need ? b & (0x7f >> (need + 1)) : b;
    for (let k = 1; k <= need; k++) {
      const c = i + k < end ? bytes[i + k] : 0;
      if ((c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if ((need > 1 && cp < (need === 2 ? 0x800 : 0x10000)) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
    if (read) s += cp < 0x10000 ? String.fromCharCode(cp) : String.fromCharCode(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + (cp & 0x3ff));
  }
  return s;
}
