// The load of `make bench`: every iteration places one order through the gateway,
// with no think time, so the chain is as busy as the virtual users can make it.
import encoding from "k6/encoding";
import http from "k6/http";

const GATEWAY = __ENV.GATEWAY_URL;
const CARD = { number: "4242424242424242", expiry: "12/39", cvc: "123" };
// The gateway's dev client (gateway/settings.py): valid only with OBSLAB_ENVIRONMENT=dev,
// which is how the bench runs it, as the native lab does.
const CLIENT_ID = "obslab-lab";
const CLIENT_SECRET = "obslab-lab-dev-secret";

// Only a created order counts as a success; anything else is in http_req_failed.
http.setResponseCallback(http.expectedStatuses(201));

// One token for the whole run (it outlives a run by minutes): the figures are about
// placing orders, not about fetching tokens.
export function setup() {
  const response = http.post(
    `${GATEWAY}/api/auth/token`,
    { grant_type: "client_credentials", scope: "orders:write" },
    {
      headers: { authorization: `Basic ${encoding.b64encode(`${CLIENT_ID}:${CLIENT_SECRET}`)}` },
      responseCallback: http.expectedStatuses(200),
    },
  );
  if (response.status !== 200) {
    throw new Error(`no token from the gateway: ${response.status} ${response.body}`);
  }
  return { token: response.json("access_token") };
}

export default function (data) {
  const order = {
    // Any of the twelve demo products, so stock rows are not one hot spot.
    items: [{ product_id: 1 + Math.floor(Math.random() * 12), quantity: 1 }],
    card: CARD,
    // With an email the order's event also makes notifications send one.
    email: "bench@example.com",
  };
  const headers = { "content-type": "application/json", authorization: `Bearer ${data.token}` };
  http.post(`${GATEWAY}/api/orders`, JSON.stringify(order), { headers });
}
