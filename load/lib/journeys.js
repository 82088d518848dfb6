// The journeys of a shopper, one function per step, each tagged with its step
// (browse | view_product | place_order | poll_order) so results read per endpoint.
import { check, sleep } from "k6";
import { Counter, Trend } from "k6/metrics";

import { get, json, post } from "./client.js";
import { NOTIFY_TIMEOUT_S, ORDER_RATIO, THINK_SCALE } from "./config.js";

/** The card the simulated bank always accepts; declines are a chaos lab, not load. */
const CARD = { number: "4242424242424242", expiry: "12/39", cvc: "123" };
/** The same attempts a patient client makes: the first, then two retries. */
const ORDER_ATTEMPTS = 3;

/** From the order's 201 to the moment a poll sees `notified_at`: the outbox, the
 * broker and the worker, as the user feels them. */
const notifiedAfter = new Trend("order_notified_after", true);
/** Retries of an order (same Idempotency-Key): a rising count is the first sign of trouble. */
const orderRetries = new Counter("order_retries");

/** A pause of `min`..`max` seconds, as a person reads a page (scaled by THINK_SCALE). */
export function think(min, max) {
  if (THINK_SCALE > 0) sleep(THINK_SCALE * (min + Math.random() * (max - min)));
}

/** The first page of the catalog; the products on it (empty if the page failed). */
export function browse() {
  const response = get("/api/products?limit=20&offset=0", "browse", "GET /api/products");
  const page = json(response);
  const ok = check(response, {
    "browse: 200 with products": (r) => r.status === 200 && page?.items?.length > 0,
  });
  return ok ? page.items : [];
}

/** One product's page. */
export function viewProduct(id) {
  const response = get(`/api/products/${id}`, "view_product", "GET /api/products/{id}");
  check(response, {
    "view_product: 200 with the product": (r) => r.status === 200 && json(r)?.id === id,
  });
}

/**
 * Place an order as a careful client does: one Idempotency-Key for the order, and
 * on a timeout, a 503/504, or "still in progress" (the first attempt outlived
 * its timeout) the same request again with the same key, after a jittered
 * backoff. The shop then places it at most once. Returns the order, or null.
 */
export function placeOrder(items) {
  const key = crypto.randomUUID();
  // With an email the order's event makes notifications send one and mark the order.
  const order = { items, card: CARD, email: "load@example.com" };
  let response;
  for (let attempt = 1; attempt <= ORDER_ATTEMPTS; attempt++) {
    if (attempt > 1) {
      orderRetries.add(1);
      sleep(0.5 * 2 ** (attempt - 2) * (0.5 + Math.random()));
    }
    response = post("/api/orders", order, "place_order", "POST /api/orders", {
      extraHeaders: { "Idempotency-Key": key },
      expected: [201],
    });
    if (!retriable(response)) break;
  }
  const placed = json(response);
  const ok = check(response, {
    "place_order: 201 confirmed": (r) => r.status === 201 && placed?.status === "confirmed",
  });
  return ok ? placed : null;
}

function retriable(response) {
  // Status 0: no answer at all (a timeout, a reset connection).
  if (response.status === 0 || response.status === 503 || response.status === 504) return true;
  return response.status === 409 && json(response)?.error?.code === "request_in_progress";
}

/** Poll the order every half second until `notified_at` is set, as an order page would. */
export function pollOrder(order) {
  const placedAt = Date.now();
  const deadline = placedAt + NOTIFY_TIMEOUT_S * 1000;
  let notified = false;
  while (!notified && Date.now() < deadline) {
    sleep(0.5);
    const response = get(`/api/orders/${order.id}`, "poll_order", "GET /api/orders/{id}");
    notified = response.status === 200 && Boolean(json(response)?.notified_at);
  }
  if (notified) notifiedAfter.add(Date.now() - placedAt);
  check(notified, { "poll_order: notified in time": (n) => n });
}

/**
 * Up to `count` different products, popular ones more often: the chance of the
 * i-th product on the page is proportional to 1/(i+1), as sales usually are.
 */
export function pickProducts(products, count) {
  const pool = products.map((product, i) => ({ product, weight: 1 / (i + 1) }));
  const picked = [];
  while (picked.length < count && pool.length > 0) {
    let roll = Math.random() * pool.reduce((sum, p) => sum + p.weight, 0);
    const index = pool.findIndex((p) => (roll -= p.weight) < 0);
    picked.push(pool.splice(index === -1 ? pool.length - 1 : index, 1)[0].product);
  }
  return picked;
}

/** A cart of the viewed products: mostly one of each, sometimes two. */
function cart(products) {
  return products.map((p) => ({ product_id: p.id, quantity: Math.random() < 0.8 ? 1 : 2 }));
}

/**
 * A shopper: browses the catalog, looks at one to three products, and with
 * `orderRatio`'s chance buys them and waits on the order page until notified.
 */
export function shopper(orderRatio = ORDER_RATIO) {
  const products = browse();
  if (products.length === 0) return;
  think(1, 3);
  const viewed = pickProducts(products, 1 + Math.floor(Math.random() * 3));
  for (const product of viewed) {
    viewProduct(product.id);
    think(2, 5);
  }
  if (Math.random() < orderRatio) {
    const order = placeOrder(cart(viewed));
    if (order) pollOrder(order);
  }
}

/**
 * A checkout alone, no think time: the breakpoint scenario's unit of work, so its
 * arrival rate reads as orders per second. Products come from a page fetched once
 * per virtual user (`products`), in the same popularity mix as a shopper's.
 */
export function checkout(products) {
  placeOrder(cart(pickProducts(products, 1)));
}
