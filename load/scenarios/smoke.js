// Smoke: a few shoppers for a minute, every one of them buying. Does every step
// work, within its SLO, before anything heavier runs? Run it first, always.
//   obslab load smoke [--vus 2] [--duration 1m]
import { duration, number, secs } from "../lib/config.js";
import { shopper } from "../lib/journeys.js";
import { handleSummary, TREND_STATS } from "../lib/summary.js";
import { thresholds } from "../lib/thresholds.js";

export const options = {
  scenarios: {
    smoke: {
      executor: "constant-vus",
      vus: number("VUS", 2),
      duration: secs(duration("DURATION", "1m")),
    },
  },
  thresholds: thresholds(["browse", "view_product", "place_order", "poll_order"]),
  summaryTrendStats: TREND_STATS,
};

// Every journey orders (unless ORDER_RATIO says otherwise), so a short smoke run
// still exercises checkout and the notification path.
const orderRatio = number("ORDER_RATIO", 1);

export default function () {
  shopper(orderRatio);
}

export { handleSummary };
