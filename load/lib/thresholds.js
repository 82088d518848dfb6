// k6 thresholds made from the SLOs: the `journeys:` section of observability/slo.yaml,
// the same numbers the alert rules use. k6 cannot read YAML, so `obslab load`
// passes that section as JSON in the SLO variable; nothing here holds a number.

/** The SLO section `obslab load` passed, parsed; a run without it stops at once. */
export function slo() {
  if (!__ENV.SLO) {
    throw new Error(
      "SLO is not set. Run scenarios with `obslab load SCENARIO` (it reads " +
        "observability/slo.yaml), or pass -e SLO=\"$(uv run obslab load --print-slo)\".",
    );
  }
  return JSON.parse(__ENV.SLO);
}

/**
 * The thresholds of a scenario whose requests are tagged with `steps`: p95 and p99
 * per step, the error rate and the share of checks that passed.
 *
 * `abort` (the breakpoint scenario) stops the run as soon as a latency or error
 * threshold fails, after `abort.delay` of warm-up so a first slow request does not.
 */
export function thresholds(steps, abort = null) {
  const objectives = slo();
  const rule = (expression) =>
    abort ? { threshold: expression, abortOnFail: true, delayAbortEval: abort.delay } : expression;
  const result = {
    // 5xx, timeouts and any answer a journey did not expect.
    http_req_failed: [rule(`rate<${objectives.max_error_rate}`)],
    // A check failing is a user seeing something wrong, even behind a 200.
    checks: [`rate>=${1 - objectives.max_error_rate}`],
  };
  for (const step of steps) {
    const target = objectives[step];
    if (!target) throw new Error(`observability/slo.yaml has no journeys.${step}`);
    result[`http_req_duration{step:${step}}`] = [
      rule(`p(95)<${target.p95_ms}`),
      rule(`p(99)<${target.p99_ms}`),
    ];
  }
  return result;
}
