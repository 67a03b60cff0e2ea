import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  ANONYMOUS_KEY, AnonymousCredentials, RecstreamApiError, RecstreamClient,
} from "../recstream.js";
import {
  fakeFetch, fakeTimers, manualClock, memoryStorage, response, sequentialIds,
} from "./helpers.js";

const API = "http://api.test/api/behavioral-ml";
const HOUR = 60 * 60 * 1000;

function minted(clock, id = "anon-1", token = "anon-tok-1", hours = 24) {
  return response(200, {
    anonymous_id: id, token, expires_at: new Date(clock.now() + hours * HOUR).toISOString(),
  });
}

describe("anonymous credentials", () => {
  it("are fetched once, kept for the next page and renewed for the same id before expiry",
    async () => {
      const clock = manualClock();
      const storage = memoryStorage();
      const transport = fakeFetch(minted(clock), minted(clock, "anon-1", "anon-tok-2"));
      const options = { endpoint: API, fetch: transport.fetch, storage, now: clock.now };
      const first = new AnonymousCredentials(options);
      assert.equal(await first.token(), "anon-tok-1");
      assert.equal(first.anonymousId, "anon-1");
      const nextPage = new AnonymousCredentials(options);
      assert.equal(await nextPage.token(), "anon-tok-1");
      assert.equal(transport.calls.length, 1, "the stored token is used");
      clock.advance(23.5 * HOUR);
      assert.equal(await nextPage.token(), "anon-tok-2");
      const [, renewal] = transport.calls;
      assert.equal(renewal.url, `${API}/anonymous`);
      assert.equal(renewal.init.headers.Authorization, "Bearer anon-tok-1");
      assert.equal(JSON.parse(storage.getItem(ANONYMOUS_KEY)).token, "anon-tok-2");
    });

  it("start a new id when the old token expired or is refused", async () => {
    const clock = manualClock();
    const transport = fakeFetch(
      minted(clock), response(401, { error: { message: "expired" } }), minted(clock, "anon-2"),
    );
    const credentials = new AnonymousCredentials({
      endpoint: API, fetch: transport.fetch, storage: memoryStorage(), now: clock.now,
    });
    await credentials.token();
    clock.advance(23.5 * HOUR);
    await credentials.token();
    assert.equal(credentials.anonymousId, "anon-2");
    assert.equal(transport.calls[2].init.headers.Authorization, undefined);
  });

  it("are fetched once for callers that ask at the same time", async () => {
    const clock = manualClock();
    const transport = fakeFetch(minted(clock));
    const credentials = new AnonymousCredentials({
      endpoint: API, fetch: transport.fetch, storage: memoryStorage(), now: clock.now,
    });
    const tokens = await Promise.all([credentials.token(), credentials.token()]);
    assert.deepEqual(tokens, ["anon-tok-1", "anon-tok-1"]);
    assert.equal(transport.calls.length, 1);
  });

  it("renew a short-lived token in the second half of its life", async () => {
    const clock = manualClock();
    const transport = fakeFetch(minted(clock, "anon-1", "t1", 0.5), minted(clock, "anon-1", "t2"));
    const credentials = new AnonymousCredentials({
      endpoint: API, fetch: transport.fetch, storage: memoryStorage(), now: clock.now,
    });
    await credentials.token();
    clock.advance(0.2 * HOUR);
    assert.equal(await credentials.token(), "t1");
    clock.advance(0.1 * HOUR);
    assert.equal(await credentials.token(), "t2");
  });

  it("report the API's refusal", async () => {
    const transport = fakeFetch(response(404, { error: { message: "anonymous tokens are off" } }));
    const credentials = new AnonymousCredentials({ endpoint: API, fetch: transport.fetch,
                                                   storage: memoryStorage() });
    await assert.rejects(credentials.token(), (error) => error instanceof RecstreamApiError
      && error.status === 404 && /anonymous tokens are off/.test(error.message));
  });
});

describe("identify", () => {
  async function anonymousClient(script) {
    const clock = manualClock();
    const transport = fakeFetch(minted(clock), ...script);
    const sessions = memoryStorage();
    const client = await RecstreamClient.anonymous({
      endpoint: API, fetch: transport.fetch, timers: fakeTimers(), now: clock.now,
      storage: sessions, queueStorage: memoryStorage(), anonymousStorage: memoryStorage(),
      lifecycleTarget: null, newId: sequentialIds("e"), batchSize: 10,
    });
    return { client, transport, clock, sessions };
  }

  it("sends the queue, names its last position and carries on as the user in the session",
    async () => {
      const { client, transport } = await anonymousClient([
        response(202, { accepted: 2, event_ids: [], events: [
          { event_id: "e-2", partition: 1, offset: 40 },
          { event_id: "e-3", partition: 1, offset: 41 },
        ] }),
        response(200, { user_id: "u-7", anonymous_id: "anon-1", merged_events: 2 }),
      ]);
      assert.equal(client.userId, "anon-1");
      const view = client.track("product_view", { product_id: "p-1" });
      client.track("add_to_cart", { product_id: "p-1" });
      const answer = await client.identify({ userId: "u-7", token: "user-tok" });
      assert.equal(answer.merged_events, 2);
      const [, tracked, identify] = transport.calls;
      assert.equal(tracked.init.headers.Authorization, "Bearer anon-tok-1");
      assert.deepEqual(tracked.body.events.map((e) => e.user_id), ["anon-1", "anon-1"]);
      assert.equal(identify.url, `${API}/identify`);
      assert.equal(identify.init.headers.Authorization, "Bearer user-tok");
      assert.deepEqual(identify.body,
        { anonymous_token: "anon-tok-1", after: { partition: 1, offset: 41 } });
      const next = client.track("product_view", { product_id: "p-2" });
      assert.equal(next.user_id, "u-7");
      assert.equal(next.session_id, view.session_id, "the same session after signing in");
      assert.equal(client.anonymous, null);
    });

  it("follows a new anonymous id when the old token expired, queued events included",
    async () => {
      const { client, transport, clock } = await anonymousClient([]);
      clock.advance(25 * HOUR); // the token expired: a new id is minted on the next send
      transport.calls.length = 0;
      const script = [minted(clock, "anon-2", "anon-tok-2")];
      const fetch = client.fetch;
      client.fetch = async (url, init) => (url.endsWith("/anonymous") ? script.shift() : fetch(url, init));
      client.anonymous.fetch = client.fetch;
      client.track("product_view", { product_id: "p-1" });
      await client.flush();
      assert.equal(client.userId, "anon-2");
      const [sent] = transport.calls;
      assert.equal(sent.init.headers.Authorization, "Bearer anon-tok-2");
      assert.deepEqual(sent.body.events.map((e) => e.user_id), ["anon-2"]);
    });

  it("sends the last position of an earlier page, kept with the credentials", async () => {
    const clock = manualClock();
    const anonymousStorage = memoryStorage();
    const firstPage = fakeFetch(minted(clock), response(202, { accepted: 1, event_ids: [],
      events: [{ event_id: "e-1", partition: 0, offset: 7 }] }));
    const options = { endpoint: API, timers: fakeTimers(), now: clock.now, storage: null,
                      queueStorage: memoryStorage(), anonymousStorage, lifecycleTarget: null,
                      newId: sequentialIds("e") };
    const first = await RecstreamClient.anonymous({ ...options, fetch: firstPage.fetch });
    first.track("product_view", { product_id: "p-1" });
    await first.flush();
    const nextPage = fakeFetch(response(200, { merged_events: 1 }));
    const second = await RecstreamClient.anonymous({ ...options, fetch: nextPage.fetch });
    assert.equal(second.userId, "anon-1");
    await second.identify({ userId: "u-7", token: "user-tok" });
    assert.deepEqual(nextPage.calls[0].body.after, { partition: 0, offset: 7 });
  });

  it("keeps the anonymous shopper when the API refuses, so it can be called again",
    async () => {
      const { client } = await anonymousClient([
        response(503, { error: { code: "consumer_behind", message: "retry" } }),
      ]);
      await assert.rejects(client.identify({ userId: "u-7", token: "user-tok" }),
        (error) => error instanceof RecstreamApiError && error.status === 503);
      assert.equal(client.userId, "anon-1");
      assert.notEqual(client.anonymous, null);
    });

  it("is only for an anonymous client", async () => {
    const client = new RecstreamClient({ userId: "u-1", token: "t", lifecycleTarget: null,
                                         fetch: fakeFetch().fetch, storage: memoryStorage(),
                                         queueStorage: memoryStorage() });
    await assert.rejects(client.identify({ userId: "u-2", token: "t2" }), TypeError);
  });
});
