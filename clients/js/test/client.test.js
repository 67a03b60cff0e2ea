import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  checkEvent,
  EVENT_TYPES,
  RecstreamClient,
  retryDelay,
  SESSION_GAP_MS,
  uuid4,
} from "../recstream.js";
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

function client(overrides = {}) {
  const clock = overrides.clock ?? manualClock();
  const timers = overrides.timers ?? fakeTimers();
  const transport = overrides.transport ?? fakeFetch();
  const errors = [];
  const sent = [];
  const instance = new RecstreamClient({
    endpoint: "http://api.test/api/behavioral-ml/",
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
    ...overrides.options,
  });
  return { instance, clock, timers, transport, errors, sent };
}

describe("clicks on recommendations", () => {
  it("are views that name the list they came from", () => {
    const { instance } = client();
    const list = { recommendation_id: "r-1", items: [{ kind: "group", id: "g-2" }] };
    const group = instance.clicked(list, list.items[0], { category: "tea" });
    assert.equal(group.event_type, "group_view");
    assert.equal(group.group_id, "g-2");
    assert.equal(group.recommendation_id, "r-1");
    assert.equal(group.category, "tea");
    const next = { recommendation_id: "r-2", items: [{ rank: 1, product_id: "p-4" }] };
    const product = instance.clicked(next, next.items[0]);
    assert.equal(product.event_type, "product_view");
    assert.equal(product.product_id, "p-4");
    assert.equal(product.recommendation_id, "r-2");
  });

  it("refuse what is not a list and one of its items", () => {
    const { instance } = client();
    assert.throws(() => instance.clicked({}, { kind: "product", id: "p-1" }), TypeError);
    assert.throws(() => instance.clicked({ recommendation_id: "r" }, { id: 7 }), TypeError);
  });
});

describe("events", () => {
  it("get a client id, the user, a session and their own time", () => {
    const { instance } = client();
    const event = instance.track("product_view", { product_id: "p-9", price: 24.9 });
    assert.equal(event.event_id, "e-1");
    assert.equal(event.session_id, "e-2"); // a new session, with a new id
    assert.equal(event.user_id, "u-1");
    assert.equal(event.event_type, "product_view");
    assert.equal(event.occurred_at, "2025-03-14T09:00:00.000Z");
    assert.equal(event.price, 24.9);
  });

  it("keep an id, a session and a time the caller gives", () => {
    const { instance } = client();
    const event = instance.track("page_view", {
      event_id: "mine", session_id: "s-7", occurred_at: new Date("2025-01-01T10:00:00+02:00"),
    });
    assert.deepEqual(
      [event.event_id, event.session_id, event.occurred_at],
      ["mine", "s-7", "2025-01-01T08:00:00.000Z"],
    );
  });

  it("that break the contract are refused at once", () => {
    const { instance } = client();
    assert.throws(() => instance.track("product_view", {}), /product_view requires product_id/);
    assert.throws(() => instance.track("rating_submitted", { product_id: "p" }), /requires rating/);
    assert.throws(() => instance.track("group_view", { product_id: "p" }), /requires group_id/);
    assert.throws(() => instance.track("product_search", { query: "" }), /requires query/);
    assert.throws(() => instance.track("teleport", {}), /unknown event_type/);
    assert.throws(() => instance.track("page_view", { colour: "red" }), /unknown field colour/);
    assert.equal(instance.queue.length, 0);
  });

  it("types name their required fields as the contract does", () => {
    assert.equal(Object.keys(EVENT_TYPES).length, 15);
    assert.deepEqual(EVENT_TYPES.rating_submitted, ["product_id", "rating"]);
    assert.doesNotThrow(() => checkEvent({ event_type: "cart_checkout" }));
  });
});

describe("ids", () => {
  it("come from crypto.randomUUID when there is one", () => {
    assert.equal(uuid4({ randomUUID: () => "from-crypto" }), "from-crypto");
  });

  it("are v4 UUIDs from getRandomValues where randomUUID is missing", () => {
    const id = uuid4({ getRandomValues: (bytes) => bytes.fill(0xff) });
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("are real UUIDs by default", () => {
    assert.notEqual(uuid4(), uuid4());
  });
});

describe("sessions", () => {
  it("continue within the gap and start anew after 30 minutes without events", () => {
    const { instance, clock } = client();
    assert.equal(instance.session(), null);
    const first = instance.track("page_view").session_id;
    assert.equal(instance.session(), first);
    clock.advance(SESSION_GAP_MS - 1);
    assert.equal(instance.track("page_view").session_id, first);
    clock.advance(SESSION_GAP_MS + 1);
    assert.equal(instance.session(), null, "looking does not extend a session");
    const third = instance.track("page_view").session_id;
    assert.notEqual(third, first);
    instance.newSession();
    assert.notEqual(instance.track("page_view").session_id, third);
  });

  it("survive a reload through sessionStorage", () => {
    const storage = memoryStorage();
    const clock = manualClock();
    const a = client({ clock, options: { storage } }).instance;
    const id = a.track("page_view").session_id;
    const b = client({ clock, options: { storage, newId: sequentialIds("other") } }).instance;
    clock.advance(60_000);
    assert.equal(b.track("page_view").session_id, id);
    assert.match(storage.getItem("recstream.session.u-1"), new RegExp(id));
  });

  it("live in memory when storage throws", () => {
    const broken = {
      getItem() { throw new Error("SecurityError"); },
      setItem() { throw new Error("SecurityError"); },
      removeItem() { throw new Error("SecurityError"); },
    };
    const { instance } = client({ options: { storage: broken } });
    const id = instance.track("page_view").session_id;
    assert.equal(instance.track("page_view").session_id, id);
  });
});

describe("batching", () => {
  it("sends when batchSize events wait", async () => {
    const { instance, transport } = client({ options: { batchSize: 3 } });
    instance.track("page_view");
    instance.track("page_view");
    await settle();
    assert.equal(transport.calls.length, 0);
    instance.track("page_view");
    await settle();
    assert.equal(transport.calls.length, 1);
    assert.equal(transport.calls[0].body.events.length, 3);
    assert.equal(transport.calls[0].url, "http://api.test/api/behavioral-ml/track-interaction");
    assert.equal(instance.queue.length, 0);
  });

  it("sends flushIntervalMs after the first waiting event", async () => {
    const { instance, timers, transport, sent } = client({ options: { flushIntervalMs: 250 } });
    instance.track("page_view");
    instance.track("page_view");
    assert.deepEqual(timers.delays(), [250]);
    timers.runAll();
    await settle();
    assert.equal(transport.calls.length, 1);
    assert.equal(transport.calls[0].body.events.length, 2);
    assert.equal(sent.length, 1);
  });

  it("sends one request at a time, in order", async () => {
    let release;
    const gate = new Promise((resolve) => { release = resolve; });
    const transport = fakeFetch(async (call) => { await gate; return accepted(1); });
    const { instance } = client({ transport, options: { batchSize: 1 } });
    const a = instance.track("page_view");
    const b = instance.track("page_view");
    await settle();
    assert.equal(transport.calls.length, 1);
    release();
    await instance.flush();
    assert.deepEqual(transport.calls.map((c) => c.body.events[0].event_id), [a.event_id, b.event_id]);
  });

  it("splits a large queue under the body cap", async () => {
    const { instance, transport } = client({ options: { batchSize: 100 } });
    const long = "x".repeat(250);
    for (let i = 0; i < 40; i++) {
      instance.track("page_view", {
        properties: Object.fromEntries(Array.from({ length: 16 }, (_, k) => [`k${k}`, long])),
      });
    }
    await instance.flush();
    assert.ok(transport.calls.length >= 2, `${transport.calls.length} requests`);
    for (const call of transport.calls) assert.ok(call.init.body.length <= 60 * 1024);
    assert.equal(transport.calls.reduce((n, c) => n + c.body.events.length, 0), 40);
  });

  it("drops the oldest events beyond maxQueue", () => {
    const { instance, errors } = client({ options: { maxQueue: 2, batchSize: 10 } });
    instance.track("page_view", { event_id: "old" });
    instance.track("page_view");
    instance.track("page_view");
    assert.equal(instance.queue.length, 2);
    assert.equal(errors[0].kind, "queue_full");
    assert.equal(errors[0].events[0].event_id, "old");
  });
});
