/**
 * The fleet summary (a pure function of two samples): no rate for a run
 * under a second, no negative memory per device when RSS ends below the
 * baseline, and a ramp stopped early counted by the devices it started.
 */
import assert from 'node:assert/strict';
import { statusLine, summary, type Sample } from '@flotilla/simulator';

const MB = 1024 * 1024;

const sample = (at: number, rss: number, sent: Record<string, number>): Sample => ({
  at,
  rss,
  stats: {
    devices: 4, started: 4, connected: 4, connects: 4, refused: 0, disconnects: 0, sent, received: {}, crashes: 0, boots: 4,
    injected: { drop: 0, flap: 0, powerCut: 0, crash: 0 }, ota: { receiving: 0, updated: 0, rolledBack: 0 }, versions: { 1: 4 },
  },
});

describe('simulator: the fleet summary', () => {
  it('gives the rate of messages sent over a run of a second or more', () => {
    const out = summary(sample(0, 100 * MB, {}), sample(10_000, 104 * MB, { hello: 4, vitals: 16 }), 100 * MB, 'default');
    assert.match(out, /^Fleet summary: 4 devices, scenario default, 10 s$/m);
    assert.match(out, /messages sent +20 \(hello 4, vitals 16\), 2\.0\/s$/m);
    assert.match(out, /memory +RSS 104(\.0)? MB, 1024\.0 KB per device above the 100(\.0)? MB before the fleet$/m);
  });

  it('counts an image crash once in its errors: as the error report the agent sends after the reboot, as fleet health does (before, twice)', () => {
    const now = sample(10_000, 100 * MB, { err: 1 });
    now.stats = { ...now.stats, crashes: 1 };
    assert.match(statusLine(sample(0, 100 * MB, {}), now), /· errors 1 ·/);
  });

  it('gives no rate for a run under a second (before, 4 hellos in 50 ms read 80.0/s)', () => {
    const out = summary(sample(0, 100 * MB, {}), sample(50, 100 * MB, { hello: 4 }), 100 * MB, 'default');
    assert.match(out, /messages sent +4 \(hello 4\), no rate for a run under 1 s$/m);
  });

  it('a ramp stopped early: counts the devices started, of those asked, and divides memory among them only', () => {
    const last = sample(6000, 140 * MB, {});
    last.stats = { ...last.stats, devices: 500, started: 10, connected: 8 };
    const out = summary(sample(0, 100 * MB, {}), last, 100 * MB, 'default');
    assert.match(out, /^Fleet summary: 10 devices started \(of 500\), scenario default, 6 s$/m);
    assert.match(out, /connected at the end +8\/10$/m);
    // Before, 40 MB over 500 devices: 81.9 KB, a fifth of the real figure.
    assert.match(out, /memory +RSS 140(\.0)? MB, 4096\.0 KB per device above the 100(\.0)? MB before the fleet$/m);
  });

  it('counts no memory to the devices when RSS ends below the baseline (before, a negative KB per device)', () => {
    const out = summary(sample(0, 100 * MB, {}), sample(5000, 90 * MB, {}), 100 * MB, 'default');
    assert.match(out, / 0\.0 KB per device above the /);
  });
});
