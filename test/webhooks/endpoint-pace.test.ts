import { describe, expect, it } from 'vitest';
import { EndpointPace, PACE_MEMORY_MS, PACE_WINDOW_MS } from '../../src/webhooks/delivery/endpoint-pace.ts';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe('EndpointPace', () => {
  it('knows no pace before a whole window has closed', () => {
    const c = clock();
    const pace = new EndpointPace(c.now);
    for (let i = 0; i < 50; i++) pace.finished('a');
    expect(pace.perSecond('a')).toBe(0);
    c.advance(PACE_WINDOW_MS);
    expect(pace.perSecond('a')).toBe(50);
    expect(pace.perSecond('b')).toBe(0);
  });

  it('counts each finish in the window it fell within, however late the window closes', () => {
    const c = clock();
    const pace = new EndpointPace(c.now);
    for (let i = 0; i < 30; i++) pace.finished('a');
    // Nothing happens for 10 s: the window that closes now still held one second's finishes.
    c.advance(10 * PACE_WINDOW_MS);
    pace.finished('a');
    expect(pace.perSecond('a')).toBe(30);
    c.advance(PACE_WINDOW_MS);
    expect(pace.perSecond('a')).toBe(1);
  });

  it('keeps an endpoint’s last pace across idle windows, per endpoint', () => {
    const c = clock();
    const pace = new EndpointPace(c.now);
    for (let i = 0; i < 20; i++) pace.finished('a');
    for (let i = 0; i < 5; i++) pace.finished('b');
    c.advance(PACE_WINDOW_MS);
    pace.finished('b');
    c.advance(5 * PACE_WINDOW_MS);
    expect(pace.perSecond('a')).toBe(20);
    expect(pace.perSecond('b')).toBe(1);
  });

  it('forgets paces older than its memory', () => {
    const c = clock();
    const pace = new EndpointPace(c.now);
    pace.finished('a');
    c.advance(PACE_WINDOW_MS);
    pace.finished('b');
    c.advance(PACE_WINDOW_MS);
    expect([pace.perSecond('a'), pace.perSecond('b')]).toEqual([1, 1]);
    c.advance(PACE_MEMORY_MS - PACE_WINDOW_MS / 2);
    pace.prune();
    expect([pace.perSecond('a'), pace.perSecond('b')]).toEqual([0, 1]);
  });
});
