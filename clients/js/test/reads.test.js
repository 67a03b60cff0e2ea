import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { pageContext, RecstreamApiError, RecstreamClient } from "../recstream.js";
import { fakeFetch, fakeTimers, memoryStorage, response } from "./helpers.js";

const ITEMS = { items: [{ kind: "product", id: "p-2", seen_in_session: false }] };

function reader(script = [response(200, ITEMS)], options = {}) {
  const transport = fakeFetch(...script);
  const timers = fakeTimers();
  const instance = new RecstreamClient({
    endpoint: "http://api.test/api/behavioral-ml/",
    userId: "u-1",
    token: "tok",
    fetch: transport.fetch,
    timers,
    storage: memoryStorage(),
    lifecycleTarget: null,
    ...options,
  });
  return { instance, transport, timers };
}

const API = "http://api.test/api/behavioral-ml";

describe("recommendations", () => {
  it("post the current item, the items shown, the filters and includeSeen", async () => {
    const { instance, transport } = reader();
    const body = await instance.recommendations({
      limit: 8, kind: "both", filters: { max_per_category: 2 },
      currentItem: { kind: "product", id: "p-9" },
      shownItems: [{ kind: "group", id: "g-2" }, { kind: "product", id: "p-3" }],
      page: "product", includeSeen: false,
    });
    assert.deepEqual(body, ITEMS);
    const [call] = transport.calls;
    assert.equal(call.url, `${API}/recommendations`);
    assert.equal(call.init.method, "POST");
    assert.equal(call.init.headers.Authorization, "Bearer tok");
    assert.equal(call.init.headers["Content-Type"], "application/json");
    assert.deepEqual(call.body, {
      limit: 8, kind: "both", filters: { max_per_category: 2 },
      context: { product_id: "p-9", shown_product_ids: ["p-3"], shown_group_ids: ["g-2"],
                 page: "product" },
      include_seen: false,
    });
  });

  it("name a group on screen as context.group_id", async () => {
    const { instance, transport } = reader();
    await instance.recommendations({ limit: 3, currentItem: { kind: "group", id: "g-7" },
                                     includeSeen: true });
    assert.deepEqual(transport.calls[0].body,
                     { limit: 3, context: { group_id: "g-7" }, include_seen: true });
  });

  it("send only what is given: no context without a current or shown item", async () => {
    const { instance, transport } = reader([response(200, ITEMS), response(200, ITEMS)]);
    await instance.recommendations();
    assert.deepEqual(transport.calls[0].body, {});
    await instance.recommendations({ limit: 5, userId: "u-other" });
    assert.deepEqual(transport.calls[1].body, { limit: 5, user_id: "u-other" });
  });

  it("refuse an item that is not {kind, id} before sending anything", async () => {
    const { instance, transport } = reader();
    await assert.rejects(instance.recommendations({ currentItem: { kind: "shop", id: "s" } }),
                         /currentItem must be/);
    await assert.rejects(instance.recommendations({ shownItems: [{ kind: "product" }] }),
                         /each of shownItems must be/);
    assert.equal(transport.calls.length, 0);
  });
});

describe("session recommendations", () => {
  it("get with the limit, the kind, the current product and includeSeen", async () => {
    const { instance, transport } = reader();
    const body = await instance.sessionRecommendations({
      limit: 5, kind: "products", currentItem: { kind: "product", id: "p 9" }, includeSeen: false,
    });
    assert.deepEqual(body, ITEMS);
    const [call] = transport.calls;
    assert.equal(call.url,
      `${API}/session/recommendations?limit=5&kind=products&product_id=p+9&include_seen=false`);
    assert.equal(call.init.method, "GET");
    assert.equal(call.init.body, undefined);
    assert.equal(call.init.headers.Authorization, "Bearer tok");
    assert.equal(call.init.headers["Content-Type"], undefined, "a GET has no body");
  });

  it("name a group on screen as group_id, and leave out what is not given", async () => {
    const { instance, transport } = reader([response(200, ITEMS), response(200, ITEMS)]);
    await instance.sessionRecommendations({ currentItem: { kind: "group", id: "g-2" },
                                            includeSeen: true });
    await instance.sessionRecommendations();
    assert.deepEqual(transport.calls.map((c) => c.url), [
      `${API}/session/recommendations?group_id=g-2&include_seen=true`,
      `${API}/session/recommendations`,
    ]);
  });
});

describe("next products", () => {
  it("get what follows the product on screen", async () => {
    const { instance, transport } = reader();
    await instance.nextProducts({ productId: "p-9", limit: 4, includeSeen: false });
    assert.equal(transport.calls[0].url,
      `${API}/sequential/next-products?product_id=p-9&limit=4&include_seen=false`);
    assert.equal(transport.calls[0].init.method, "GET");
  });

  it("start from the session's items without a product", async () => {
    const { instance, transport } = reader();
    await instance.nextProducts({ limit: 4 });
    assert.equal(transport.calls[0].url, `${API}/sequential/next-products?limit=4`);
  });
});

describe("shared lists", () => {
  it("ask for the items similar to the one on screen, and for trending ones", async () => {
    const { instance, transport } = reader([1, 2, 3, 4].map(() => response(200, { items: [] })));
    await instance.similarItems({ item: { kind: "group", id: "g-2" }, limit: 6 });
    await instance.similarItems({ item: { kind: "product", id: "p-9" }, kind: "products" });
    await instance.trending({ category: "garden & outdoor", limit: 3 });
    await instance.trending();
    assert.deepEqual(transport.calls.map((c) => c.url), [
      `${API}/items/similar?group_id=g-2&limit=6`,
      `${API}/items/similar?product_id=p-9&kind=products`,
      `${API}/items/trending?category=garden+%26+outdoor&limit=3`,
      `${API}/items/trending`,
    ]);
    await assert.rejects(instance.similarItems({ item: { kind: "page", id: "x" } }), TypeError);
  });
});

describe("reads", () => {
  it("reject a non-2xx answer with its status and the API's message", async () => {
    const problem = {
      error: { code: "invalid_request", message: "give at most one of product_id or group_id",
               details: null, request_id: "r-1" },
    };
    const { instance } = reader([response(422, problem)]);
    const error = await instance.recommendations({ limit: 8 }).then(
      () => assert.fail("resolved"), (e) => e);
    assert.ok(error instanceof RecstreamApiError);
    assert.ok(error instanceof Error);
    assert.equal(error.status, 422);
    assert.equal(error.code, "invalid_request");
    assert.equal(error.requestId, "r-1");
    assert.deepEqual(error.body, problem);
    assert.equal(error.message,
      "POST /recommendations: HTTP 422: give at most one of product_id or group_id");
  });

  it("reject an answer without an error body with the status alone", async () => {
    const broken = { ...response(503), json: async () => { throw new SyntaxError("html"); } };
    const { instance } = reader([broken]);
    await assert.rejects(instance.nextProducts({ productId: "p-1" }), (error) => {
      assert.equal(error.status, 503);
      assert.match(error.message,
        /^GET \/sequential\/next-products\?product_id=p-1: HTTP 503: no error message$/);
      return true;
    });
  });

  it("pass network errors on and clear their timeout", async () => {
    const { instance, timers } = reader([new TypeError("fetch failed")]);
    await assert.rejects(instance.sessionRecommendations({ limit: 2 }), /fetch failed/);
    assert.equal(timers.pending.size, 0);
  });

  it("are aborted after requestTimeoutMs", async () => {
    const hang = (call) => new Promise((_, reject) => {
      call.init.signal.addEventListener("abort", () => reject(new Error("aborted")));
    });
    const { instance, timers } = reader([hang], { requestTimeoutMs: 1234 });
    const read = instance.nextProducts({ limit: 1 });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(timers.delays(), [1234]);
    timers.runAll();
    await assert.rejects(read, /aborted/);
  });

  it("use getToken before each read, like tracking", async () => {
    let n = 0;
    const { instance, transport } = reader([response(200, ITEMS), response(200, ITEMS)],
                                           { token: undefined, getToken: async () => `t${++n}` });
    await instance.recommendations({ limit: 1 });
    await instance.nextProducts({ limit: 1 });
    assert.deepEqual(transport.calls.map((c) => c.init.headers.Authorization),
                     ["Bearer t1", "Bearer t2"]);
  });

  it("with an API key send the key and ask for the client's user", async () => {
    const { instance, transport } = reader([response(200, ITEMS), response(200, ITEMS)],
                                           { token: undefined, apiKey: "key-1" });
    await instance.recommendations({ limit: 1 });
    await instance.sessionRecommendations({ limit: 1, userId: "u-2" });
    assert.equal(transport.calls[0].init.headers["X-API-Key"], "key-1");
    assert.equal(transport.calls[0].init.headers.Authorization, undefined);
    assert.deepEqual(transport.calls[0].body, { limit: 1, user_id: "u-1" });
    assert.equal(transport.calls[1].url, `${API}/session/recommendations?limit=1&user_id=u-2`);
  });
});

describe("page context", () => {
  it("maps the current item and the shown items to the API's context", () => {
    assert.equal(pageContext(), null);
    assert.equal(pageContext({ shownItems: [] }), null);
    assert.deepEqual(pageContext({ currentItem: { kind: "product", id: "p-1" } }),
                     { product_id: "p-1" });
    assert.deepEqual(pageContext({ shownItems: [{ kind: "product", id: "p-2" }] }),
                     { shown_product_ids: ["p-2"] });
  });
});
