// The end of every scenario: a short table per journey step, printed and written
// with k6's full JSON summary into SUMMARY_DIR (`obslab load` passes the lab's
// runtime folder, `.obslab/run/load/` by default).

const STEPS = ["browse", "view_product", "place_order", "poll_order"];

/** The trend figures every scenario keeps: the SLO's p95 and p99, and the count. */
export const TREND_STATS = ["avg", "med", "p(95)", "p(99)", "max", "count"];

/** Pass through as the scenario's `handleSummary`. */
export function handleSummary(data) {
  const table = render(data);
  const files = { stdout: table };
  const dir = __ENV.SUMMARY_DIR;
  if (dir) {
    const name = __ENV.SCENARIO || "load";
    files[`${dir}/${name}.summary.json`] = JSON.stringify(data, null, 2);
    files[`${dir}/${name}.summary.txt`] = table;
  }
  return files;
}

function render(data) {
  const m = data.metrics;
  const seconds = data.state.testRunDurationMs / 1000;
  const lines = [
    "",
    `${__ENV.SCENARIO || "load"} against ${__ENV.BASE_URL || "?"}: ${seconds.toFixed(0)}s, ` +
      `${m.iterations?.values.count ?? 0} journeys, ` +
      `${(m.http_reqs?.values.rate ?? 0).toFixed(1)} requests/s`,
    "",
    row("step", "requests", "p95 ms", "p99 ms", "SLO p95/p99", "ok"),
  ];
  for (const step of STEPS) {
    const metric = m[`http_req_duration{step:${step}}`];
    if (!metric || !metric.values.count) continue;
    const v = metric.values;
    const limits = Object.keys(metric.thresholds || {});
    const limit = (stat) => limits.find((t) => t.startsWith(`${stat}<`))?.split("<")[1] ?? "-";
    const slo = `${limit("p(95)")}/${limit("p(99)")}`;
    lines.push(row(step, v.count, fixed(v["p(95)"]), fixed(v["p(99)"]), slo, verdict(metric)));
  }
  lines.push("");
  for (const [name, label] of [
    ["http_req_failed", "errors"],
    ["checks", "checks passed"],
  ]) {
    const metric = m[name];
    if (!metric) continue;
    const limits = Object.keys(metric.thresholds || {}).join(", ");
    lines.push(
      `${label.padEnd(14)} ${(100 * metric.values.rate).toFixed(2).padStart(7)}%  ` +
        `${limits.padEnd(16)} ${verdict(metric)}`,
    );
  }
  const notified = m.order_notified_after?.values;
  if (notified?.count) {
    lines.push(`notified after  p95 ${fixed(notified["p(95)"])} ms over ${notified.count} orders`);
  }
  if (m.order_retries?.values.count) {
    lines.push(`order retries   ${m.order_retries.values.count}`);
  }
  const failed = failedThresholds(data);
  lines.push("");
  lines.push(
    failed.length
      ? `FAILED thresholds:\n${failed.map((f) => `  ${f}`).join("\n")}`
      : "All thresholds passed.",
  );
  return `${lines.join("\n")}\n`;
}

/** "metric: expression" of every threshold that failed. */
function failedThresholds(data) {
  const failed = [];
  for (const [name, metric] of Object.entries(data.metrics)) {
    for (const [expression, result] of Object.entries(metric.thresholds || {})) {
      if (!result.ok) failed.push(`${name}: ${expression}`);
    }
  }
  return failed;
}

function verdict(metric) {
  const results = Object.values(metric.thresholds || {});
  if (results.length === 0) return "";
  return results.every((r) => r.ok) ? "ok" : "FAILED";
}

function fixed(value) {
  return value === undefined ? "-" : value.toFixed(0);
}

function row(...cells) {
  const widths = [14, 9, 8, 8, 13, 6];
  return cells
    .map((cell, i) => (i === 0 ? String(cell).padEnd(widths[i]) : String(cell).padStart(widths[i])))
    .join(" ")
    .trimEnd();
}
