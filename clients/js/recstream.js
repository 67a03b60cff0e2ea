// recstream tracking client: a dependency-free ES module for browsers (and Node 18+).
//
//   import { RecstreamClient } from "./recstream.js";
//   const client = new RecstreamClient({ endpoint: "/api/behavioral-ml", userId, token });
//   client.track("product_view", { product_id: "p-9", category: "kitchen", price: 24.9 });
//
// Events follow the contract of shared/src/recstream/events.py (see docs/events.md).
// Each event gets a client-generated id (a retry re-sends the same id, so the
// consumer drops duplicates), a session id (kept in sessionStorage, new after
// 30 minutes without events) and its own time. Events are sent in batches
// (when `batchSize` events wait, or `flushIntervalMs` after the first one)
// to POST <endpoint>/track-interaction, one request at a time so a user's
// events keep their order. 5xx, 429 and network errors are retried with
// exponential backoff and full jitter, honouring Retry-After; other 4xx
// answers drop the batch and are reported to `onError`. The API publishes a
// batch's valid events and lists the bad ones: those are reported to `onError`
// (`rejected`, with each one's reasons), the rest to `onSent`.
//
// The same client reads what the API recommends (recommendations, sessionRecommendations,
// nextProducts), with the same credentials. A read names the item the page is about
// (`currentItem`, never recommended back) and may name other items the page shows
// (`shownItems`); it resolves to the API's JSON answer and rejects with a
// RecstreamApiError (status, code, the API's message) on a non-2xx answer.
//
// A shopper who has not signed in gets an anonymous id and token from the API
// (`await RecstreamClient.anonymous({ endpoint })`, kept in localStorage and renewed before
// it expires); when they sign in, `await client.identify({ userId, token })` sends what is
// queued, merges the anonymous history into the user (POST /identify) and carries on as
// that user, in the same session.
//
// When the page is hidden, waiting events go out with fetch(..., {keepalive: true}),
// which carries the Authorization / X-API-Key header. navigator.sendBeacon cannot
// carry a header, and the API takes credentials only in headers (never in the URL
// or the body), so a beacon is used only in browsers without keepalive fetch and
// only when `beaconUrl` names a first-party collector that authenticates the user
// itself (e.g. by session cookie) and forwards the events with its own API key.

export const API_PREFIX = "/api/behavioral-ml";
export const MAX_BATCH_EVENTS = 100; // the API's default max_events_per_request
export const MAX_BODY_BYTES = 60 * 1024; // under the API's 64 KiB cap and fetch keepalive's quota
export const SESSION_GAP_MS = 30 * 60 * 1000;

// event type -> the fields it requires, as in the contract.
export const EVENT_TYPES = Object.freeze({
  purchase_completed: ["product_id"],
  group_join_complete: ["group_id"],
  payment_success: [],
  cart_checkout: [],
  add_to_cart: ["product_id"],
  group_join_click: ["group_id"],
  rating_submitted: ["product_id", "rating"],
  wishlist_add: ["product_id"],
  product_view: ["product_id"],
  group_view: ["group_id"],
  product_search: ["query"],
  page_view: [],
  group_leave: ["group_id"],
  cart_remove: ["product_id"],
  wishlist_remove: ["product_id"],
});
export const EVENT_FIELDS = Object.freeze([
  "event_id", "event_type", "user_id", "session_id", "occurred_at", "product_id", "group_id",
  "category", "price", "quantity", "rating", "query", "properties", "recommendation_id",
  "schema_version",
]);
const RETRYABLE = (status) => status === 429 || status >= 500;

/** A v4 UUID: crypto.randomUUID, or getRandomValues where randomUUID is missing (http pages). */
export function uuid4(cryptoImpl = globalThis.crypto) {
  if (cryptoImpl && typeof cryptoImpl.randomUUID === "function") return cryptoImpl.randomUUID();
  const b = cryptoImpl.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Milliseconds to wait: Retry-After (seconds or an HTTP date) when given, else backoff. */
export function retryDelay(attempt, retryAfter, { baseMs, maxMs, now, random }) {
  if (retryAfter) {
    const seconds = Number(retryAfter);
    const at = Number.isFinite(seconds) ? now() + seconds * 1000 : Date.parse(retryAfter);
    if (Number.isFinite(at)) return Math.min(maxMs, Math.max(0, at - now()));
  }
  return Math.floor(random() * Math.min(maxMs, baseMs * 2 ** attempt));
}

/** Throws a TypeError when an event breaks the contract's required fields. */
export function checkEvent(event) {
  const required = EVENT_TYPES[event.event_type];
  if (!required) throw new TypeError(`unknown event_type ${JSON.stringify(event.event_type)}`);
  for (const name of required) {
    if (event[name] === undefined || event[name] === null || event[name] === "") {
      throw new TypeError(`${event.event_type} requires ${name}`);
    }
  }
  for (const name of Object.keys(event)) {
    if (!EVENT_FIELDS.includes(name)) throw new TypeError(`unknown field ${name}`);
  }
}

/** A read the API answered with a non-2xx status; `message` carries the API's own message. */
export class RecstreamApiError extends Error {
  constructor(method, path, status, body) {
    const error = body && typeof body === "object" ? body.error : null;
    const detail = typeof error?.message === "string" ? error.message : "no error message";
    super(`${method} ${path}: HTTP ${status}: ${detail}`);
    this.name = "RecstreamApiError";
    this.status = status;
    this.code = error?.code ?? null;
    this.requestId = error?.request_id ?? null;
    this.body = body;
  }
}

function checkItemRef(item, what) {
  if (!item || (item.kind !== "product" && item.kind !== "group")
      || typeof item.id !== "string" || !item.id) {
    throw new TypeError(`${what} must be {kind: "product" | "group", id}`);
  }
  return item;
}

/**
 * The `context` of a recommendations request: the item the page is about
 * (`{kind, id}` -> product_id or group_id) and the other items it shows. Null when empty.
 */
export function pageContext({ currentItem = null, shownItems = [], page = null } = {}) {
  const context = {};
  if (currentItem) {
    const item = checkItemRef(currentItem, "currentItem");
    context[item.kind === "product" ? "product_id" : "group_id"] = item.id;
  }
  const shown = [...(shownItems ?? [])].map((item) => checkItemRef(item, "each of shownItems"));
  const products = shown.filter((i) => i.kind === "product").map((i) => i.id);
  const groups = shown.filter((i) => i.kind === "group").map((i) => i.id);
  if (products.length) context.shown_product_ids = products;
  if (groups.length) context.shown_group_ids = groups;
  if (page) context.page = page;
  return Object.keys(context).length ? context : null;
}

/** `?name=value&...` of the parameters that are set (undefined and null are left out). */
function queryString(params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) query.append(name, String(value));
  }
  const text = query.toString();
  return text ? `?${text}` : "";
}

/** Session ids per user and tab: sessionStorage when usable, else memory. */
export class SessionTracker {
  constructor({ storage, gapMs = SESSION_GAP_MS, newId }) {
    this.storage = storage;
    this.gapMs = gapMs;
    this.newId = newId;
    this.memory = new Map();
  }

  _load(key) {
    try {
      const raw = this.storage?.getItem(key);
      if (raw) return JSON.parse(raw);
    } catch { /* storage disabled or corrupt: fall back to memory */ }
    return this.memory.get(key) ?? null;
  }

  _save(key, value) {
    this.memory.set(key, value);
    try { this.storage?.setItem(key, JSON.stringify(value)); } catch { /* quota, privacy mode */ }
  }

  /** The session of an event at `at` (ms): the current one, or a new one after the gap. */
  touch(userId, at) {
    const key = `recstream.session.${userId}`;
    const current = this._load(key);
    if (current && at - current.lastAt <= this.gapMs) {
      this._save(key, { id: current.id, lastAt: Math.max(at, current.lastAt) });
      return current.id;
    }
    const id = this.newId();
    this._save(key, { id, lastAt: at });
    return id;
  }

  /** The current session id at `at` (ms), or null when there is none; changes nothing. */
  peek(userId, at) {
    const current = this._load(`recstream.session.${userId}`);
    return current && at - current.lastAt <= this.gapMs ? current.id : null;
  }

  /** Continue session `id` as `userId`'s (a shopper who just signed in). */
  adopt(userId, id, at) {
    this._save(`recstream.session.${userId}`, { id, lastAt: at });
  }

  reset(userId) {
    const key = `recstream.session.${userId}`;
    this.memory.delete(key);
    try { this.storage?.removeItem(key); } catch { /* ignore */ }
  }
}

function defaultStorage() {
  try { return globalThis.sessionStorage ?? null; } catch { return null; }
}

function defaultQueueStorage() {
  try { return globalThis.localStorage ?? null; } catch { return null; }
}

// Events handed to keepalive fetch when a page was hidden are sent again by the next page
// only within this time: the consumer drops a repeated event_id within its dedupe window
// (RECSTREAM_CORE__DEDUPE_WINDOW_SECONDS, one hour by default), so a resend never counts twice.
export const RESEND_WINDOW_MS = 50 * 60 * 1000;

export const ANONYMOUS_KEY = "recstream:anonymous";
export const RENEW_BEFORE_MS = 60 * 60 * 1000; // renew an anonymous token this long before expiry

/**
 * The anonymous id and token of a shopper who has not signed in (POST /anonymous), kept in
 * `storage` (localStorage) so every page and tab of the shop is the same shopper. A token
 * close to its expiry is renewed for the same id; an expired or refused one is replaced by
 * a new id (the history of the old one stays with it).
 */
export class AnonymousCredentials {
  constructor({ endpoint = API_PREFIX, fetch, storage, now } = {}) {
    this.endpoint = endpoint.replace(/\/$/, "");
    this.fetch = fetch ?? globalThis.fetch?.bind(globalThis);
    this.storage = storage === undefined ? defaultQueueStorage() : storage;
    this.now = now ?? (() => Date.now());
    this.current = null;
    this._pending = null; // one request at a time: parallel callers share it
    try { this.current = JSON.parse(this.storage?.getItem(ANONYMOUS_KEY) ?? "null"); }
    catch { this.current = null; }
  }

  get anonymousId() { return this.current?.anonymousId ?? null; }

  /** Where the latest event of this id went ({partition, offset}), kept across pages. */
  get lastPosition() { return this.current?.lastPosition ?? null; }

  remember(position) {
    if (!this.current) return;
    this.current = { ...this.current, lastPosition: position };
    this._save();
  }

  /** A valid token (fetched or renewed when needed). */
  async token() {
    const current = this.current;
    const expires = current ? Date.parse(current.expiresAt) : NaN;
    const left = current ? expires - this.now() : -1;
    // renew within an hour of expiry, or in the second half of a shorter lifetime
    const lifetime = current?.obtainedAt ? expires - current.obtainedAt : 2 * RENEW_BEFORE_MS;
    if (current && left > Math.min(RENEW_BEFORE_MS, lifetime / 2)) return current.token;
    this._pending ??= this._fetch(current && left > 0 ? current : null)
      .finally(() => { this._pending = null; });
    return this._pending;
  }

  async _fetch(renewing) {
    const headers = renewing ? { Authorization: `Bearer ${renewing.token}` } : {};
    const response = await this.fetch(`${this.endpoint}/anonymous`, { method: "POST", headers });
    let body = null;
    try { body = await response.json(); } catch { /* not JSON */ }
    if (!response.ok) {
      if (renewing && response.status === 401) { this.clear(); return this._fetch(null); }
      throw new RecstreamApiError("POST", "/anonymous", response.status, body);
    }
    const sameId = renewing && renewing.anonymousId === body.anonymous_id;
    this.current = {
      anonymousId: body.anonymous_id, token: body.token, expiresAt: body.expires_at,
      obtainedAt: this.now(), lastPosition: sameId ? renewing.lastPosition ?? null : null,
    };
    this._save();
    return this.current.token;
  }

  _save() {
    try { this.storage?.setItem(ANONYMOUS_KEY, JSON.stringify(this.current)); }
    catch { /* quota, privacy mode: kept in memory */ }
  }

  /** Forget the anonymous id (after it was merged into a signed-in user). */
  clear() {
    this.current = null;
    try { this.storage?.removeItem(ANONYMOUS_KEY); } catch { /* ignore */ }
  }
}

function splitBatches(events, maxEvents, maxBytes) {
  const batches = [];
  let batch = [];
  let size = 12; // {"events":[]}
  for (const event of events) {
    const bytes = new TextEncoder().encode(JSON.stringify(event)).length + 1;
    if (batch.length && (batch.length >= maxEvents || size + bytes > maxBytes)) {
      batches.push(batch);
      batch = [];
      size = 12;
    }
    batch.push(event);
    size += bytes;
  }
  if (batch.length) batches.push(batch);
  return batches;
}

export class RecstreamClient {
  constructor(options) {
    const o = { ...options };
    if (!o.userId) throw new TypeError("userId is required");
    if (!o.token && !o.getToken && !o.apiKey) throw new TypeError("give token, getToken or apiKey");
    this.endpoint = (o.endpoint ?? API_PREFIX).replace(/\/$/, "");
    this.userId = o.userId;
    this.token = o.token ?? null;
    this.getToken = o.getToken ?? null;
    this.apiKey = o.apiKey ?? null;
    this.batchSize = Math.min(o.batchSize ?? 20, MAX_BATCH_EVENTS);
    this.flushIntervalMs = o.flushIntervalMs ?? 1000;
    this.maxQueue = o.maxQueue ?? 1000;
    this.maxRetries = o.maxRetries ?? 6;
    this.backoff = { baseMs: o.backoffMs ?? 500, maxMs: o.maxBackoffMs ?? 30_000 };
    this.requestTimeoutMs = o.requestTimeoutMs ?? 10_000;
    this.beaconUrl = o.beaconUrl ?? null;
    this.fetch = "fetch" in o ? o.fetch : globalThis.fetch?.bind(globalThis);
    this.now = o.now ?? (() => Date.now());
    this.random = o.random ?? Math.random;
    this.timers = o.timers ?? { setTimeout: globalThis.setTimeout.bind(globalThis),
                                clearTimeout: globalThis.clearTimeout.bind(globalThis) };
    this.navigator = o.navigator ?? globalThis.navigator ?? null;
    this.newId = o.newId ?? (() => uuid4());
    this.keepalive = o.keepalive
      ?? (typeof Request === "function" && "keepalive" in Request.prototype);
    this._onError = o.onError ?? null;
    this._onSent = o.onSent ?? null;
    this.sessions = new SessionTracker({ storage: o.storage === undefined ? defaultStorage()
      : o.storage, gapMs: o.sessionGapMs ?? SESSION_GAP_MS, newId: this.newId });
    this.queue = [];
    this.timer = null;
    this.sending = null;
    this.attempt = 0;
    this.queueStorage = o.queueStorage === undefined ? defaultQueueStorage() : o.queueStorage;
    this._queueKey = `recstream:queue:${this.userId}`;
    this._handed = null; // { at, events } given to keepalive fetch as the page was hidden
    this.anonymous = o.anonymous ?? null; // AnonymousCredentials of a shopper not signed in
    this.lastPosition = null; // {partition, offset} of the latest event the API published
    this._restore();
    this._onHide = () => { this.flushOnHide(); };
    this._onVisibility = () => {
      if (globalThis.document?.visibilityState === "hidden") this.flushOnHide();
    };
    const target = o.lifecycleTarget === undefined ? globalThis.window : o.lifecycleTarget;
    this.lifecycleTarget = target ?? null;
    this.lifecycleTarget?.addEventListener?.("pagehide", this._onHide);
    globalThis.document?.addEventListener?.("visibilitychange", this._onVisibility);
  }

  /**
   * A client for a shopper who has not signed in: their anonymous id and token from the
   * API (POST /anonymous, kept in localStorage, renewed before expiry). `options` are the
   * constructor's, without userId and credentials.
   */
  static async anonymous(options = {}) {
    const anonymous = options.anonymous ?? new AnonymousCredentials({
      endpoint: options.endpoint, fetch: options.fetch, storage: options.anonymousStorage,
      now: options.now,
    });
    await anonymous.token();
    const client = new RecstreamClient({
      ...options, anonymous, userId: anonymous.anonymousId,
      getToken: async () => {
        const token = await anonymous.token();
        client._follow(anonymous.anonymousId);
        return token;
      },
    });
    return client;
  }

  /**
   * The shopper signed in as `userId` (with `token` or `getToken` of that user): send what
   * is queued, merge the anonymous history into the user (POST /identify, which waits until
   * the last event sent is applied), then carry on as the user in the same session.
   * Resolves to the API's answer; safe to call again after a failure.
   */
  async identify({ userId, token, getToken } = {}) {
    if (!this.anonymous) throw new TypeError("identify() is for a client of RecstreamClient.anonymous()");
    if (!userId || (!token && !getToken)) throw new TypeError("identify needs userId and token or getToken");
    await this.flush();
    if (this.queue.length) throw new Error("events are still waiting to be sent: try again");
    const anonymousToken = await this.anonymous.token();
    this._follow(this.anonymous.anonymousId);
    const body = { anonymous_token: anonymousToken };
    const after = this.anonymous.lastPosition ?? this.lastPosition;
    if (after) body.after = after;
    const headers = { "Content-Type": "application/json",
                      Authorization: `Bearer ${token ?? await getToken()}` };
    const response = await this.fetch(`${this.endpoint}/identify`, {
      method: "POST", headers, body: JSON.stringify(body),
    });
    let parsed = null;
    try { parsed = await response.json(); } catch { /* not JSON */ }
    if (!response.ok) throw new RecstreamApiError("POST", "/identify", response.status, parsed);
    this.anonymous.clear();
    this.anonymous = null;
    this.token = token ?? null;
    this.getToken = getToken ?? null;
    this._switchUser(userId);
    return parsed;
  }

  /** The anonymous credentials now name another id (the old token expired): carry on as it. */
  _follow(anonymousId) {
    if (anonymousId && anonymousId !== this.userId) this._switchUser(anonymousId);
  }

  /** Carry on as `userId`: its session continues the current one, and the events still
   * queued (tracked as the previous id by the same shopper) are sent as its own. */
  _switchUser(userId) {
    const previous = this.userId;
    const session = this.sessions.peek(previous, this.now());
    if (session) this.sessions.adopt(userId, session, this.now());
    for (const event of this.queue) if (event.user_id === previous) event.user_id = userId;
    try { this.queueStorage?.removeItem(this._queueKey); } catch { /* ignore */ }
    this.userId = userId;
    this._queueKey = `recstream:queue:${userId}`;
    this.lastPosition = null;
    this._persist();
  }

  onError(report) {
    try { this._onError?.(report); } catch { /* a callback must not break sending */ }
  }

  onSent(report) {
    try { this._onSent?.(report); } catch { /* a callback must not break sending */ }
  }

  /** Queue one event; returns it as it will be sent. Throws TypeError on a contract error. */
  track(eventType, fields = {}) {
    const at = fields.occurred_at ? new Date(fields.occurred_at).getTime() : this.now();
    const event = {
      ...fields,
      event_id: fields.event_id ?? this.newId(),
      event_type: eventType,
      user_id: fields.user_id ?? this.userId,
      session_id: fields.session_id ?? this.sessions.touch(this.userId, at),
      occurred_at: new Date(at).toISOString(),
    };
    checkEvent(event);
    this.queue.push(event);
    if (this.queue.length > this.maxQueue) {
      const dropped = this.queue.splice(0, this.queue.length - this.maxQueue);
      this.onError({ kind: "queue_full", events: dropped });
    }
    this._persist();
    if (this.queue.length >= this.batchSize) void this.flush();
    else this._schedule(this.flushIntervalMs);
    return event;
  }

  /**
   * The shopper opened `item` from `list` (a response of recommendations(),
   * sessionRecommendations(), nextProducts(), or with a user's token similarItems() and
   * trending()): a view of it that names the list, so the
   * click counts for the variant that ranked it. `fields` adds to the event (category, price).
   */
  clicked(list, item, fields = {}) {
    if (!list || typeof list.recommendation_id !== "string") {
      throw new TypeError("clicked(list, item): list is a recommendations response");
    }
    const kind = item?.kind ?? (item?.product_id !== undefined ? "product" : undefined);
    const id = item?.id ?? item?.product_id;
    if ((kind !== "product" && kind !== "group") || typeof id !== "string") {
      throw new TypeError("clicked(list, item): item is one of the list's items");
    }
    const idField = kind === "group" ? "group_id" : "product_id";
    return this.track(`${kind}_view`, {
      ...fields, [idField]: id, recommendation_id: list.recommendation_id,
    });
  }

  /** The current session id, or null before the first event and after the inactivity gap. */
  session() {
    return this.sessions.peek(this.userId, this.now());
  }

  /** Start a new session for the next event. */
  newSession() {
    this.sessions.reset(this.userId);
  }

  /** Send everything queued now; resolves when the queue is empty or waits for a retry. */
  async flush() {
    this._cancelTimer();
    while (this.sending) await this.sending;
    if (!this.queue.length) return;
    this.sending = this._sendQueued().finally(() => { this.sending = null; });
    await this.sending;
  }

  async _sendQueued() {
    while (this.queue.length) {
      const batch = splitBatches(this.queue.slice(0, this.batchSize), this.batchSize,
                                 MAX_BODY_BYTES)[0];
      const outcome = await this._post(batch, false);
      if (outcome.retry) {
        this.attempt += 1;
        if (this.attempt > this.maxRetries) {
          this.queue.splice(0, batch.length);
          this._persist();
          this.attempt = 0;
          this.onError({ kind: "gave_up", status: outcome.status, events: batch });
          continue;
        }
        this._schedule(retryDelay(this.attempt - 1, outcome.retryAfter,
                                  { ...this.backoff, now: this.now, random: this.random }));
        return;
      }
      this.attempt = 0;
      this.queue.splice(0, batch.length);
      this._persist();
      if (outcome.ok) this._reportSent(batch, outcome);
      else this.onError({ kind: "rejected", status: outcome.status, body: outcome.body,
                          events: batch });
    }
  }

  /** The API published the batch's valid events; the bad ones come back in `rejected`. */
  _reportSent(batch, outcome) {
    const rejected = Array.isArray(outcome.body?.rejected) ? outcome.body.rejected : [];
    const bad = new Set(rejected.map((r) => r.index));
    const sent = batch.filter((_, index) => !bad.has(index));
    const published = Array.isArray(outcome.body?.events) ? outcome.body.events : [];
    const last = published[published.length - 1];
    if (last && Number.isInteger(last.partition) && Number.isInteger(last.offset)) {
      this.lastPosition = { partition: last.partition, offset: last.offset };
      this.anonymous?.remember(this.lastPosition);
    }
    if (sent.length) this.onSent({ events: sent, response: outcome.body });
    if (rejected.length) {
      this.onError({ kind: "rejected", status: outcome.status, body: outcome.body,
                     events: batch.filter((_, index) => bad.has(index)),
                     reasons: rejected });
    }
  }

  // ---- reads --------------------------------------------------------------------------

  /**
   * Ranked products and group deals for the user now (POST /recommendations). The
   * current item is never returned, nor are the shown items; items already seen in the
   * session come back only with `includeSeen: true`. The answer's `ranker` names what
   * ranked them (a learned model's version, or "blend"); `includeReasons: true` gives each
   * item the model's top feature contributions (`reasons`).
   */
  async recommendations({ limit, kind, filters, currentItem, shownItems, page, includeSeen,
                    includeReasons, userId } = {}) {
    const body = {
      limit, kind, filters,
      context: pageContext({ currentItem, shownItems, page }) ?? undefined,
      include_seen: includeSeen,
      include_reasons: includeReasons,
      user_id: this._readUser(userId),
    };
    return this._read("POST", "/recommendations", body); // JSON leaves out what is undefined
  }

  /** Recommendations from the current session, with its intent (GET /session/recommendations). */
  async sessionRecommendations({ limit, kind, currentItem, includeSeen, userId } = {}) {
    const item = currentItem ? checkItemRef(currentItem, "currentItem") : null;
    return this._read("GET", `/session/recommendations${queryString({
      limit, kind,
      product_id: item?.kind === "product" ? item.id : null,
      group_id: item?.kind === "group" ? item.id : null,
      include_seen: includeSeen, user_id: this._readUser(userId),
    })}`);
  }

  /**
   * The products most likely to come next after `productId`, or after the session's items
   * without it (GET /sequential/next-products); `productId` itself is never returned.
   */
  async nextProducts({ productId, limit, includeSeen, userId } = {}) {
    return this._read("GET", `/sequential/next-products${queryString({
      product_id: productId, limit, include_seen: includeSeen,
      user_id: this._readUser(userId),
    })}`);
  }

  /**
   * Items similar to one (GET /items/similar): viewed together, by the same shoppers, next.
   * `item` is `{ kind: "product" | "group", id }` (the item itself is never returned). The
   * answer is the same for every user: nobody's profile is read.
   */
  async similarItems({ item, limit, kind } = {}) {
    const ref = checkItemRef(item, "item");
    return this._read("GET", `/items/similar${queryString({
      product_id: ref.kind === "product" ? ref.id : null,
      group_id: ref.kind === "group" ? ref.id : null,
      limit, kind,
    })}`);
  }

  /** The most popular items now, overall or in a `category` (GET /items/trending). */
  async trending({ category, limit, kind } = {}) {
    return this._read("GET", `/items/trending${queryString({ category, limit, kind })}`);
  }

  /** Whose data a read asks for: the given user, or the client's when an API key is used. */
  _readUser(userId) {
    if (userId !== undefined && userId !== null) return userId;
    return this.getToken || this.token ? undefined : this.userId;
  }

  async _read(method, path, body) {
    const controller = typeof AbortController === "function" ? new AbortController() : null;
    const timeout = controller
      ? this.timers.setTimeout(() => controller.abort(), this.requestTimeoutMs) : null;
    try {
      const init = { method, headers: await this._headers(body !== undefined),
                     signal: controller?.signal };
      if (body !== undefined) init.body = JSON.stringify(body);
      const response = await this.fetch(`${this.endpoint}${path}`, init);
      let parsed = null;
      try { parsed = await response.json(); } catch { /* not JSON */ }
      if (!response.ok) throw new RecstreamApiError(method, path, response.status, parsed);
      return parsed;
    } finally {
      if (timeout !== null) this.timers.clearTimeout(timeout);
    }
  }

  async _headers(json = true) {
    const headers = json ? { "Content-Type": "application/json" } : {};
    if (this.getToken) headers.Authorization = `Bearer ${await this.getToken()}`;
    else if (this.token) headers.Authorization = `Bearer ${this.token}`;
    else headers["X-API-Key"] = this.apiKey;
    return headers;
  }

  async _post(events, keepalive) {
    const controller = typeof AbortController === "function" ? new AbortController() : null;
    const timeout = controller && !keepalive
      ? this.timers.setTimeout(() => controller.abort(), this.requestTimeoutMs) : null;
    try {
      const response = await this.fetch(`${this.endpoint}/track-interaction`, {
        method: "POST", headers: await this._headers(), body: JSON.stringify({ events }),
        keepalive, signal: controller?.signal,
      });
      let body = null;
      try { body = await response.json(); } catch { /* not JSON */ }
      if (RETRYABLE(response.status)) {
        return { retry: true, status: response.status,
                 retryAfter: response.headers?.get?.("Retry-After") ?? null };
      }
      return { ok: response.ok, status: response.status, body };
    } catch (error) {
      return { retry: true, status: 0, error };
    } finally {
      if (timeout !== null) this.timers.clearTimeout(timeout);
    }
  }

  /** The page is going away: hand every queued event to keepalive fetch, or to a beacon. */
  flushOnHide() {
    this._cancelTimer();
    const events = this.queue.splice(0, this.queue.length);
    if (!events.length) return 0;
    // kept until the next page: a keepalive request may not arrive (see RESEND_WINDOW_MS)
    this._handed = { at: this.now(), events };
    this._persist();
    let sent = 0;
    for (const batch of splitBatches(events, this.batchSize, MAX_BODY_BYTES)) {
      if (this.fetch && (this.keepalive || !this.beaconUrl)) {
        this._post(batch, true).then((outcome) => {
          if (outcome.ok) this._delivered(batch);
          else this.onError({ kind: "hidden_send_failed", status: outcome.status,
                              events: batch });
        });
        sent += batch.length;
      } else if (this.beaconUrl && this.navigator?.sendBeacon) {
        const blob = new Blob([JSON.stringify({ events: batch })], { type: "application/json" });
        if (this.navigator.sendBeacon(this.beaconUrl, blob)) sent += batch.length;
        else this.onError({ kind: "beacon_refused", events: batch });
      } else {
        this.onError({ kind: "no_transport", events: batch });
      }
    }
    return sent;
  }

  /** Stop timers and listeners, send what is queued. */
  async close() {
    this.lifecycleTarget?.removeEventListener?.("pagehide", this._onHide);
    globalThis.document?.removeEventListener?.("visibilitychange", this._onVisibility);
    await this.flush();
    this._cancelTimer();
  }

  /** A keepalive request answered (the page was only hidden): nothing to resend. */
  _delivered(batch) {
    if (!this._handed) return;
    const done = new Set(batch.map((e) => e.event_id));
    const left = this._handed.events.filter((e) => !done.has(e.event_id));
    this._handed = left.length ? { ...this._handed, events: left } : null;
    this._persist();
  }

  /** Unsent events of an earlier page of this user (same storage), back in the queue. */
  _restore() {
    let saved = null;
    try { saved = JSON.parse(this.queueStorage?.getItem(this._queueKey) ?? "null"); }
    catch { saved = null; /* storage disabled or corrupt: start empty */ }
    if (!saved || typeof saved !== "object") return;
    const handed = saved.handed && this.now() - saved.handed.at < RESEND_WINDOW_MS
      ? saved.handed.events : [];
    const waiting = Array.isArray(saved.waiting) ? saved.waiting : [];
    const seen = new Set();
    for (const event of [...handed, ...waiting]) {
      if (event?.event_id && !seen.has(event.event_id)) {
        seen.add(event.event_id);
        this.queue.push(event);
      }
    }
    this.queue.splice(0, Math.max(0, this.queue.length - this.maxQueue));
    this._persist();
    if (this.queue.length) this._schedule(0);
  }

  _persist() {
    if (!this.queueStorage) return;
    try {
      if (!this.queue.length && !this._handed) this.queueStorage.removeItem(this._queueKey);
      else {
        this.queueStorage.setItem(this._queueKey,
          JSON.stringify({ waiting: this.queue, handed: this._handed }));
      }
    } catch { /* quota, privacy mode: the queue stays in memory */ }
  }

  _schedule(delayMs) {
    if (this.timer !== null) return;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, delayMs);
  }

  _cancelTimer() {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }
}
