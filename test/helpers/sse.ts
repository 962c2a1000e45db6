/** A raw event stream (SSE) read in the background, for tests that watch what a stream gets and when it ends. */
import assert from 'node:assert/strict';

export interface OpenStream {
  /** Everything received so far. */
  text: string;
  /** Whether the server ended the stream. */
  ended: boolean;
  /** Closes it from this side. */
  close(): void;
}

/** Opens `url` with a bearer token; fails unless it answers 200. */
export async function openStream(url: string, token: string): Promise<OpenStream> {
  const ac = new AbortController();
  const r = await fetch(url, { headers: { authorization: 'Bearer ' + token }, signal: ac.signal });
  assert.equal(r.status, 200, url);
  const s: OpenStream = { text: '', ended: false, close: () => ac.abort() };
  const reader = r.body!.getReader();
  void (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      s.text += new TextDecoder().decode(value);
    }
    s.ended = true;
  })().catch(() => undefined);
  return s;
}
