// Everything a scenario can be told from outside, read once from k6's environment
// (`k6 run -e NAME=value`, which `obslab load` sets from its options).

/** The shop's public URL: the edge (nginx) of the native lab by default. */
export const BASE_URL = (__ENV.BASE_URL || "http://127.0.0.1:8000").replace(/\/+$/, "");

/** Multiplies every think time: 0 for none, 0.5 for impatient users. */
export const THINK_SCALE = number("THINK_SCALE", 1);

/** The share of shopping journeys that end in an order (the conversion rate). */
export const ORDER_RATIO = number("ORDER_RATIO", 0.3);

/** How long a client waits for one answer before it gives up on it (and retries). */
export const REQUEST_TIMEOUT = __ENV.REQUEST_TIMEOUT || "10s";

/** How long a client keeps polling an order before it calls the notification lost. */
export const NOTIFY_TIMEOUT_S = number("NOTIFY_TIMEOUT_S", 30);

/** `name` if set, else `fallback`; a value that is not a number stops the run at once. */
export function number(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`${name}=${raw} is not a non-negative number`);
  }
  return value;
}

/** The duration `name` in seconds (k6's format: 90s, 1m30s, 2h, 500ms), else `fallback`. */
export function duration(name, fallback) {
  const text = __ENV[name] || fallback;
  const parts = /^(?:\d+(?:\.\d+)?(?:ms|h|m|s))+$/.test(text)
    ? text.match(/\d+(?:\.\d+)?(?:ms|h|m|s)/g)
    : null;
  if (!parts) throw new Error(`${name}=${text} is not a duration like 30s, 5m or 1m30s`);
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600 };
  return parts.reduce((total, part) => {
    const [, amount, u] = part.match(/^([\d.]+)(ms|h|m|s)$/);
    return total + Number(amount) * unit[u];
  }, 0);
}

/** A number of seconds as k6 writes a duration ("95s"): stages need whole seconds. */
export function secs(seconds) {
  return `${Math.max(1, Math.round(seconds))}s`;
}

/**
 * An arrival rate in iterations per second as k6 counts it: k6 takes whole
 * iterations per time unit, so rates go per minute and 0.5/s stays possible.
 */
export function perMinute(ratePerSecond) {
  return Math.max(1, Math.round(ratePerSecond * 60));
}

/** Enough virtual users to start with for `rate` iterations/s that last `seconds` each. */
export function vusFor(ratePerSecond, seconds, maxVUs) {
  return Math.min(maxVUs, Math.max(1, Math.ceil(ratePerSecond * seconds)));
}
