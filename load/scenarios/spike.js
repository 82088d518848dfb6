// Spike: a quiet shop (a tenth of RATE), then RATE within ten seconds (a flash
// sale, a link on the front page), held for a while, then quiet again. Does it
// survive, shed load cleanly, and recover once the spike is over?
//   obslab load spike [--rate 20] [--duration 3m] [--vus 400]
import { duration, number, perMinute, secs, vusFor } from "../lib/config.js";
import { shopper } from "../lib/journeys.js";
import { handleSummary, TREND_STATS } from "../lib/summary.js";
import { thresholds } from "../lib/thresholds.js";

// As stress: about past the knee on the project's machine (load/README.md).
const rate = number("RATE", 20);
const total = duration("DURATION", "3m");
const maxVUs = number("VUS", 400);
const quiet = perMinute(rate / 10);

export const options = {
  scenarios: {
    spike: {
      executor: "ramping-arrival-rate",
      startRate: quiet,
      timeUnit: "1m",
      preAllocatedVUs: vusFor(rate, 15, maxVUs),
      maxVUs,
      stages: [
        { target: quiet, duration: secs(total * 0.3) },
        { target: perMinute(rate), duration: "10s" },
        { target: perMinute(rate), duration: secs(total * 0.3) },
        { target: quiet, duration: "10s" },
        { target: quiet, duration: secs(total * 0.3) },
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
