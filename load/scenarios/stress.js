// Stress: arrivals climb in four steps to RATE, which should sit past the knee
// (where latency stops being flat; `breakpoint` finds it). Each step is held long
// enough to read the dashboards at that load, then the shop must recover.
//   obslab load stress [--rate 20] [--duration 10m] [--vus 400]
import { duration, number, perMinute, secs, vusFor } from "../lib/config.js";
import { shopper } from "../lib/journeys.js";
import { handleSummary, TREND_STATS } from "../lib/summary.js";
import { thresholds } from "../lib/thresholds.js";

// 20 shoppers/s is an estimate of "past the knee" on the project's 2-CPU machine
// (checkout broke near 15 orders/s there, load/README.md; a shopper orders 0.3 times
// and makes about four cheaper reads). Set it from your own breakpoint run.
const rate = number("RATE", 20);
const total = duration("DURATION", "10m");
const maxVUs = number("VUS", 400);
const steps = [0.25, 0.5, 0.75, 1];

export const options = {
  scenarios: {
    stress: {
      executor: "ramping-arrival-rate",
      startRate: 0,
      timeUnit: "1m",
      preAllocatedVUs: vusFor(rate / 2, 15, maxVUs),
      maxVUs,
      // Each step: 5% of the time to ramp, 15% to hold; the last 20% ramps down.
      stages: [
        ...steps.flatMap((share) => [
          { target: perMinute(rate * share), duration: secs(total * 0.05) },
          { target: perMinute(rate * share), duration: secs(total * 0.15) },
        ]),
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
