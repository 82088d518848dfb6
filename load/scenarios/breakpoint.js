// Breakpoint: checkouts arrive at a rate that climbs steadily from one a second to
// RATE over DURATION, with no think time, until the checkout's SLO breaks and
// k6 aborts the run (abortOnFail). k6 judges the p99 of the whole run so far, so
// it stops a little after the moment it broke: `obslab load` reads every sample
// and prints the rate at which the p99 of each 10 s crossed the SLO, and the
// lab's busiest process then. The dashboards say the rest.
//   obslab load breakpoint [--rate 40] [--duration 10m] [--vus 100]
import { duration, number, perMinute, secs } from "../lib/config.js";
import { browse, checkout } from "../lib/journeys.js";
import { handleSummary, TREND_STATS } from "../lib/summary.js";
import { thresholds } from "../lib/thresholds.js";

const rate = number("RATE", 40);

export const options = {
  scenarios: {
    breakpoint: {
      executor: "ramping-arrival-rate",
      startRate: perMinute(1),
      timeUnit: "1m",
      preAllocatedVUs: 10,
      maxVUs: number("VUS", 100),
      stages: [{ target: perMinute(rate), duration: secs(duration("DURATION", "10m")) }],
    },
  },
  // Only checkout is measured. Thirty seconds of warm-up before a breach may abort:
  // the first few hundred samples are too few for a p99 (one slow one is "the p99").
  thresholds: thresholds(["place_order"], { delay: "30s" }),
  summaryTrendStats: TREND_STATS,
};

/** The catalog page, fetched once for the whole run: the products checkouts pick from. */
export function setup() {
  const products = browse();
  if (products.length === 0) throw new Error(`no products at ${__ENV.BASE_URL}`);
  return products;
}

export default function (products) {
  checkout(products);
}

export { handleSummary };
