// How the journeys talk to the shop: one place for headers and credentials,
// and the tags that let every result be read per journey step.
import encoding from "k6/encoding";
import http from "k6/http";

import { BASE_URL, REQUEST_TIMEOUT } from "./config.js";

/** The client of the load generator: the lab's demo client unless told otherwise. */
const CLIENT_ID = __ENV.CLIENT_ID || "obslab-lab";
const CLIENT_SECRET = __ENV.CLIENT_SECRET || "obslab-lab-dev-secret";

// Each virtual user's token (k6 runs every VU in its own JS runtime) and its expiry.
let token = null;
let tokenExpires = 0;

/**
 * The headers of every request to the shop.
 *
 * The only place credentials go: OAuth2 client credentials (`POST /api/auth/token`,
 * client id and secret in HTTP Basic), one token per virtual user, fetched again
 * 30 s before it expires, sent as `Authorization: Bearer …`. The token request is
 * tagged `step:auth`, apart from the journey steps and their thresholds.
 */
export function headers(extra = {}) {
  if (token === null || Date.now() > tokenExpires) {
    const basic = encoding.b64encode(`${CLIENT_ID}:${CLIENT_SECRET}`);
    const response = http.post(
      `${BASE_URL}/api/auth/token`,
      { grant_type: "client_credentials" },
      {
        headers: { authorization: `Basic ${basic}` },
        tags: { step: "auth", name: "POST /api/auth/token" },
        timeout: REQUEST_TIMEOUT,
      },
    );
    const answer = response.status === 200 ? json(response) : null;
    // No token: the journey's own requests then fail with 401, counted as errors.
    token = answer ? answer.access_token : null;
    tokenExpires = answer ? Date.now() + (answer.expires_in - 30) * 1000 : 0;
  }
  const auth = token ? { authorization: `Bearer ${token}` } : {};
  return { "content-type": "application/json", ...auth, ...extra };
}

/**
 * Request parameters for one journey step.
 *
 * `step` is the tag thresholds and the summary group by. `name` replaces the URL
 * tag, so `/api/products/7` and `/api/products/8` are one series, not one each
 * (k6 tags every sample with its URL, and ids in a tag explode the series).
 */
export function params(step, name, { extraHeaders = {}, expected = [200] } = {}) {
  return {
    headers: headers(extraHeaders),
    tags: { step, name },
    timeout: REQUEST_TIMEOUT,
    // Only these answers count as successes in http_req_failed; a 409 or a 402
    // the journey did not expect is an error the shop made a user see.
    responseCallback: http.expectedStatuses(...expected),
  };
}

export function get(path, step, name) {
  return http.get(`${BASE_URL}${path}`, params(step, name));
}

export function post(path, body, step, name, options = {}) {
  return http.post(`${BASE_URL}${path}`, JSON.stringify(body), params(step, name, options));
}

/** The JSON body of a response, or null when there is none (a timeout) or it is not JSON. */
export function json(response) {
  try {
    return response.json();
  } catch (_) {
    return null;
  }
}
