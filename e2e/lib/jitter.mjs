// The jitter scenario's shared parts (tests/jitter.test.mjs,
// tests/recovery.test.mjs): cutting each client's connection on a schedule,
// and the percentiles of the replay latency.

/** Cuts every ~15 s (±20%), the first at a random point of the first 15 s. */
export const CUT_EVERY_MS = 15_000;
/** Each cut keeps the connection down ~2 s (±25%). */
export const DOWN_MS = 2_000;

/**
 * Cut each client's `proxy` (see `cuttableProxy` in lib/tcp.mjs) on that
 * schedule until the returned `stop()`; every timer is bounded by `stop`.
 */
export function scheduleCuts(clients) {
  const timers = new Set();
  let on = true;
  const later = (ms, f) => {
    const h = setTimeout(() => {
      timers.delete(h);
      if (on) f();
    }, ms);
    timers.add(h);
  };
  for (const c of clients) {
    const next = (ms) =>
      later(ms, () => {
        c.proxy.cut(DOWN_MS * (0.75 + Math.random() / 2));
        next(CUT_EVERY_MS * (0.8 + Math.random() * 0.4));
      });
    next(Math.random() * CUT_EVERY_MS);
  }
  return () => {
    on = false;
    timers.forEach(clearTimeout);
    timers.clear();
  };
}

/** The `p`th percentile of `xs` (0 for none). */
export function percentile(xs, p) {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
