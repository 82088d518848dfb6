// Average load: the traffic of a normal day, as an open model (new shoppers arrive
// at RATE per second whether or not the shop keeps up, as real ones do): a ramp
// up, a plateau, a ramp down.
//   obslab load average [--rate 1] [--duration 5m] [--vus 60]
import { duration, number, perMinute, secs, vusFor } from "../lib/config.js";
import { shopper } from "../lib/journeys.js";
import { handleSummary, TREND_STATS } from "../lib/summary.js";
import { thresholds } from "../lib/thresholds.js";

const rate = number("RATE", 1);
const total = duration("DURATION", "5m");
const maxVUs = number("VUS", 60);

export const options = {
  scenarios: {
    average: {
      executor: "ramping-arrival-rate",
      startRate: 0,
      timeUnit: "1m",
      // A shopper's journey lasts about 15 s of mostly thinking.
      preAllocatedVUs: vusFor(rate, 15, maxVUs),
      maxVUs,
      stages: [
        { target: perMinute(rate), duration: secs(total * 0.2) },
        { target: perMinute(rate), duration: secs(total * 0.6) },
        { target: 0, duration: secs(total * 0.2) },
      ],
    },
  },
  thresholds: thresholds(["browse", "view_product", "place_order", "poll_order"]),
  summaryTrendStats: TREND_STATS,
};

export default function () {
  shopper();
}

export { handleSummary };
