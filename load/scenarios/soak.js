// Soak: average load held for a long time, to find what only time reveals: a
// leak, a table or queue that grows, a pool that slowly runs dry. Ten minutes by
// default so it fits a workshop; hours (--duration 4h) to mean it.
//   obslab load soak [--rate 1] [--duration 10m] [--vus 60]
import { duration, number, perMinute, secs, vusFor } from "../lib/config.js";
import { shopper } from "../lib/journeys.js";
import { handleSummary, TREND_STATS } from "../lib/summary.js";
import { thresholds } from "../lib/thresholds.js";

const rate = number("RATE", 1);
const maxVUs = number("VUS", 60);

export const options = {
  scenarios: {
    soak: {
      executor: "constant-arrival-rate",
      rate: perMinute(rate),
      timeUnit: "1m",
      duration: secs(duration("DURATION", "10m")),
      preAllocatedVUs: vusFor(rate, 15, maxVUs),
      maxVUs,
    },
  },
  thresholds: thresholds(["browse", "view_product", "place_order", "poll_order"]),
  summaryTrendStats: TREND_STATS,
};

export default function () {
  shopper();
}

export { handleSummary };
