// The load of `make bench`: every iteration places one order through the gateway,
// with no think time, so the chain is as busy as the virtual users can make it.
import http from "k6/http";

const GATEWAY = __ENV.GATEWAY_URL;
const HEADERS = { "content-type": "application/json" };
const CARD = { number: "4242424242424242", expiry: "12/39", cvc: "123" };

// Only a created order counts as a success; anything else is in http_req_failed.
http.setResponseCallback(http.expectedStatuses(201));

export default function () {
  const order = {
    // Any of the twelve demo products, so stock rows are not one hot spot.
    items: [{ product_id: 1 + Math.floor(Math.random() * 12), quantity: 1 }],
    card: CARD,
    // With an email the order's event also makes notifications send one.
    email: "bench@example.com",
  };
  http.post(`${GATEWAY}/api/orders`, JSON.stringify(order), { headers: HEADERS });
}
