import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { RESEND_WINDOW_MS, RecstreamClient, retryDelay } from "../recstream.js";
import {
  accepted,
  fakeFetch,
  fakeTimers,
  manualClock,
  memoryStorage,
  response,
  sequentialIds,
  settle,
} from "./helpers.js";

function client(transport, options = {}) {
  const clock = manualClock();
  const timers = fakeTimers();
  const errors = [];
  const sent = [];
  const instance = new RecstreamClient({
    endpoint: "/api/behavioral-ml",
    userId: "u-1",
    token: "tok",
    fetch: transport.fetch,
    now: clock.now,
    timers,
    random: () => 1,
    storage: memoryStorage(),
    newId: sequentialIds("e"),
    lifecycleTarget: null,
    onError: (r) => errors.push(r),
    onSent: (r) => sent.push(r),
    ...options,
  });
  return { instance, clock, timers, errors, sent };
}

describe("retries", () => {
  it("re-send the same events after a 503, waiting as long as Retry-After says", async () => {
    const transport = fakeFetch(response(503, {}, { "Retry-After": "2" }), accepted(2));
    const { instance, timers, errors, sent } = client(transport);
    instance.track("page_view");
    instance.track("page_view");
    await instance.flush();
    assert.equal(transport.calls.length, 1);
    assert.deepEqual(timers.delays(), [2000]);
    assert.equal(instance.queue.length, 2, "the batch waits for its retry");
    timers.runAll();
    await settle();
    assert.equal(transport.calls.length, 2);
    assert.deepEqual(transport.calls[1].body, transport.calls[0].body, "same ids, same events");
    assert.equal(instance.queue.length, 0);
    assert.equal(sent.length, 1);
    assert.equal(errors.length, 0);
  });

  it("back off exponentially after 429s and network errors", async () => {
    const transport = fakeFetch(
      response(429),
      new TypeError("fetch failed"),
      response(500),
      response(502),
      accepted(1),
    );
    const { instance, timers, sent } = client(transport, { backoffMs: 100, maxBackoffMs: 500 });
    instance.track("page_view");
    await instance.flush();
    const delays = [];
    while (timers.pending.size) {
      delays.push(...timers.delays());
      timers.runAll();
      await settle();
    }
    assert.deepEqual(delays, [100, 200, 400, 500]); // random() = 1: the upper bound, capped
    assert.equal(transport.calls.length, 5);
    assert.equal(sent.length, 1);
  });

  it("give up after maxRetries and report the events", async () => {
    const transport = fakeFetch(response(503), response(503), response(503));
    const { instance, timers, errors } = client(transport, { maxRetries: 2 });
    instance.track("page_view", { event_id: "lost" });
    await instance.flush();
    for (let i = 0; i < 2; i++) {
      timers.runAll();
      await settle();
    }
    assert.equal(transport.calls.length, 3);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].kind, "gave_up");
    assert.equal(errors[0].events[0].event_id, "lost");
    assert.equal(instance.queue.length, 0);
  });

  it("are not made for a 422: the batch is dropped and reported", async () => {
    const problem = { error: { code: "invalid_events", message: "bad", details: [] } };
    const transport = fakeFetch(response(422, problem), accepted(1));
    const { instance, timers, errors } = client(transport, { batchSize: 1 });
    instance.track("page_view", { event_id: "bad" });
    instance.track("page_view", { event_id: "good" });
    await instance.flush();
    assert.equal(timers.pending.size, 0);
    assert.deepEqual(transport.calls.map((c) => c.body.events[0].event_id), ["bad", "good"]);
    assert.equal(errors[0].kind, "rejected");
    assert.equal(errors[0].status, 422);
    assert.deepEqual(errors[0].body, problem);
  });

  it("are not made for the bad events of a published batch: they are reported, the rest sent", async () => {
    const reasons = [{ index: 1, event_id: "bad", errors: [{ loc: "product_id", msg: "Field required", type: "missing" }] }];
    const transport = fakeFetch(response(202, { accepted: 2, event_ids: ["a", "c"], events: [], rejected: reasons }));
    const { instance, timers, errors, sent } = client(transport, { batchSize: 3 });
    for (const id of ["a", "bad", "c"]) instance.track("page_view", { event_id: id });
    await instance.flush();
    assert.equal(timers.pending.size, 0);
    assert.equal(transport.calls.length, 1, "nothing is sent again");
    assert.deepEqual(sent[0].events.map((e) => e.event_id), ["a", "c"]);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].kind, "rejected");
    assert.deepEqual(errors[0].events.map((e) => e.event_id), ["bad"]);
    assert.deepEqual(errors[0].reasons, reasons);
  });

  it("wait at most maxBackoffMs, also when Retry-After is an HTTP date", () => {
    const now = () => Date.parse("2025-03-14T09:00:00Z");
    const options = { baseMs: 500, maxMs: 30_000, now, random: () => 0.5 };
    assert.equal(retryDelay(0, "Fri, 14 Mar 2025 09:00:10 GMT", options), 10_000);
    assert.equal(retryDelay(0, "3600", options), 30_000);
    assert.equal(retryDelay(3, null, options), 2000);
    assert.equal(retryDelay(20, null, options), 15_000);
  });

  it("stay in a callback: a throwing onSent does not break sending", async () => {
    const transport = fakeFetch();
    const { instance } = client(transport, { onSent: () => { throw new Error("app bug"); } });
    instance.track("page_view");
    await instance.flush();
    instance.track("page_view");
    await instance.flush();
    assert.equal(transport.calls.length, 2);
  });
});

describe("credentials", () => {
  it("go in the Authorization header as a bearer token", async () => {
    const transport = fakeFetch();
    const { instance } = client(transport);
    instance.track("page_view");
    await instance.flush();
    const { init, url } = transport.calls[0];
    assert.equal(init.method, "POST");
    assert.equal(init.headers.Authorization, "Bearer tok");
    assert.equal(init.headers["Content-Type"], "application/json");
    assert.ok(!url.includes("tok"));
  });

  it("come from getToken before every request when it is given", async () => {
    const transport = fakeFetch();
    let n = 0;
    const { instance } = client(transport, { getToken: async () => `fresh-${++n}` });
    instance.track("page_view");
    await instance.flush();
    instance.track("page_view");
    await instance.flush();
    assert.deepEqual(transport.calls.map((c) => c.init.headers.Authorization),
      ["Bearer fresh-1", "Bearer fresh-2"]);
  });

  it("can be an API key in X-API-Key", async () => {
    const transport = fakeFetch();
    const { instance } = client(transport, { token: undefined, apiKey: "k-1" });
    instance.track("page_view");
    await instance.flush();
    assert.equal(transport.calls[0].init.headers["X-API-Key"], "k-1");
    assert.equal(transport.calls[0].init.headers.Authorization, undefined);
  });

  it("are required", () => {
    assert.throws(() => new RecstreamClient({ userId: "u", lifecycleTarget: null }), /token/);
  });
});

describe("page hide", () => {
  it("sends waiting events with keepalive fetch and the Authorization header", async () => {
    const transport = fakeFetch();
    const page = new EventTarget();
    const { instance, timers } = client(transport, { lifecycleTarget: page, keepalive: true });
    instance.track("page_view");
    instance.track("product_view", { product_id: "p-1" });
    page.dispatchEvent(new Event("pagehide"));
    await settle();
    assert.equal(transport.calls.length, 1);
    assert.equal(transport.calls[0].init.keepalive, true);
    assert.equal(transport.calls[0].init.headers.Authorization, "Bearer tok");
    assert.equal(transport.calls[0].body.events.length, 2);
    assert.equal(timers.pending.size, 0, "the interval timer is cancelled");
    await instance.close();
  });

  it("uses a beacon to the first-party collector only where keepalive fetch is missing", () => {
    const beacons = [];
    const navigator = { sendBeacon: (url, blob) => { beacons.push({ url, blob }); return true; } };
    const transport = fakeFetch();
    const { instance } = client(transport, {
      keepalive: false, beaconUrl: "/collect", navigator,
    });
    instance.track("page_view");
    assert.equal(instance.flushOnHide(), 1);
    assert.equal(transport.calls.length, 0);
    assert.equal(beacons.length, 1);
    assert.equal(beacons[0].url, "/collect", "no credentials in the beacon's URL");
    assert.equal(beacons[0].blob.type, "application/json");
  });

  it("reports events it has no way to send", () => {
    const { instance, errors } = client({ fetch: undefined }, { fetch: null, keepalive: false });
    instance.track("page_view");
    assert.equal(instance.flushOnHide(), 0);
    assert.equal(errors[0].kind, "no_transport");
  });
});

describe("unsent events", () => {
  it("wait in storage for the next page of the same user", async () => {
    const queueStorage = memoryStorage();
    const first = client(fakeFetch(), { queueStorage });
    first.instance.track("page_view", { event_id: "a" });
    first.instance.track("page_view", { event_id: "b" });
    assert.deepEqual(JSON.parse(queueStorage.getItem("recstream:queue:u-1")).waiting
      .map((e) => e.event_id), ["a", "b"]);
    // the page goes away without sending (no pagehide: a crash, a killed tab)
    const transport = fakeFetch();
    const next = client(transport, { queueStorage });
    await next.instance.flush();
    assert.deepEqual(transport.calls[0].body.events.map((e) => e.event_id), ["a", "b"]);
    assert.equal(queueStorage.getItem("recstream:queue:u-1"), null, "sent: nothing waits");
  });

  it("handed to keepalive on hide are sent again only within the resend window", async () => {
    const queueStorage = memoryStorage();
    const hidden = client(fakeFetch(() => new Promise(() => {})),  // the page unloads first
                          { queueStorage, keepalive: true });
    hidden.instance.track("page_view", { event_id: "h" });
    assert.equal(hidden.instance.flushOnHide(), 1);
    const soon = client(fakeFetch(), { queueStorage });
    await soon.instance.flush();
    assert.deepEqual(soon.sent[0].events.map((e) => e.event_id), ["h"]);

    const later = memoryStorage();
    const stale = client(fakeFetch(() => new Promise(() => {})),
                         { queueStorage: later, keepalive: true });
    stale.instance.track("page_view", { event_id: "old" });
    stale.instance.flushOnHide();
    const hidAt = stale.clock.now();
    const afterAnHour = client(fakeFetch(), { queueStorage: later,
                                              now: () => hidAt + RESEND_WINDOW_MS + 1 });
    assert.equal(afterAnHour.instance.queue.length, 0,
                 "probably delivered, and the consumer would no longer drop a repeat");
  });

  it("delivered on hide (the page stayed) are not sent again", async () => {
    const queueStorage = memoryStorage();
    const shown = client(fakeFetch(), { queueStorage, keepalive: true });
    shown.instance.track("page_view", { event_id: "v" });
    shown.instance.flushOnHide();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(queueStorage.getItem("recstream:queue:u-1"), null);
  });
});
