/**
 * What a name or a title may not hold: control characters (C0, DEL, C1), line
 * and paragraph separators, zero-width characters and bidirectional marks,
 * overrides and isolates. Each would make a listing, a terminal or a log line
 * show something other than what is stored (an ESC in a firmware title drove
 * the terminal of whoever listed it).
 */
export const UNSAFE_IN_TEXT = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;

/** Text for a terminal: what UNSAFE_IN_TEXT names shown as U+FFFD, whatever stored it. */
export function forTerminal(s: string): string {
  return s.replace(new RegExp(UNSAFE_IN_TEXT.source, 'g'), '\ufffd');
}
