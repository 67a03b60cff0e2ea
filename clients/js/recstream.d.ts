// Types of the recstream tracking client (recstream.js). They mirror the event
// contract of shared/src/recstream/events.py (schema version 1, docs/events.md).

export declare const API_PREFIX: "/api/behavioral-ml";
export declare const MAX_BATCH_EVENTS: 100;
export declare const MAX_BODY_BYTES: number;
export declare const SESSION_GAP_MS: number;

/** Types whose event is about a product: `product_id` is required. */
export type ProductEventType =
  | "purchase_completed"
  | "add_to_cart"
  | "wishlist_add"
  | "product_view"
  | "cart_remove"
  | "wishlist_remove";

/** Types whose event is about a group deal: `group_id` is required. */
export type GroupEventType =
  | "group_join_complete"
  | "group_join_click"
  | "group_view"
  | "group_leave";

/** Types that need no item. */
export type PlainEventType = "payment_success" | "cart_checkout" | "page_view";

export type EventType =
  | ProductEventType
  | GroupEventType
  | PlainEventType
  | "rating_submitted"
  | "product_search";

/** An id: 1..128 characters, no white space, `{`, `}` or `|`. */
export type Id = string;
export type PropertyValue = string | number | boolean | null;

/** Fields every event may carry. */
export interface OptionalFields {
  /** Default: a new UUID (crypto.randomUUID). A retry re-sends the same id. */
  event_id?: Id;
  /** Default: the client's user. A user token may only track its own events. */
  user_id?: Id;
  /** Default: the tab's current session (new after 30 minutes without events). */
  session_id?: Id;
  /** Default: now. A Date, or an RFC 3339 string with a time zone. */
  occurred_at?: string | Date;
  product_id?: Id;
  group_id?: Id;
  /** 1..128 characters. */
  category?: string;
  /** 0..1e9, finite. */
  price?: number;
  /** Integer 1..10,000. */
  quantity?: number;
  /** At most 16 entries; keys 1..64 characters; string values at most 256 characters. */
  properties?: Record<string, PropertyValue>;
  schema_version?: 1;
}

/** The fields each event type requires on top of {@link OptionalFields}. */
export interface RequiredFields {
  purchase_completed: { product_id: Id };
  group_join_complete: { group_id: Id };
  payment_success: {};
  cart_checkout: {};
  add_to_cart: { product_id: Id };
  group_join_click: { group_id: Id };
  rating_submitted: { product_id: Id; rating: 1 | 2 | 3 | 4 | 5 };
  wishlist_add: { product_id: Id };
  product_view: { product_id: Id };
  group_view: { group_id: Id };
  product_search: { query: string };
  page_view: {};
  group_leave: { group_id: Id };
  cart_remove: { product_id: Id };
  wishlist_remove: { product_id: Id };
}

export type EventFields<T extends EventType> = Omit<OptionalFields, keyof RequiredFields[T]> &
  RequiredFields[T] & { rating?: 1 | 2 | 3 | 4 | 5; query?: string };

/** An event as sent to the API: ids, user, session and time filled in. */
export type RecstreamEvent<T extends EventType = EventType> = EventFields<T> & {
  event_id: Id;
  event_type: T;
  user_id: Id;
  session_id: Id;
  /** ISO 8601 in UTC, e.g. "2025-03-14T09:26:53.589Z". */
  occurred_at: string;
};

/** event type -> names of the fields it requires. */
export declare const EVENT_TYPES: Readonly<{ [T in EventType]: ReadonlyArray<keyof RequiredFields[T]> }>;
export declare const EVENT_FIELDS: ReadonlyArray<string>;

/** The API's answer to an accepted batch (202). */
export interface TrackAccepted {
  accepted: number;
  event_ids: string[];
  events: { event_id: string; partition: number; offset: number }[];
}

export type ErrorReport =
  | { kind: "queue_full"; events: RecstreamEvent[] }
  | { kind: "gave_up"; status: number; events: RecstreamEvent[] }
  | { kind: "rejected"; status: number; body: unknown; events: RecstreamEvent[] }
  | { kind: "hidden_send_failed"; status: number | undefined; events: RecstreamEvent[] }
  | { kind: "beacon_refused"; events: RecstreamEvent[] }
  | { kind: "no_transport"; events: RecstreamEvent[] };

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface ClientOptions {
  /** The API's base path or URL. Default "/api/behavioral-ml". */
  endpoint?: string;
  /** The user the events are about (a bearer token's `sub`). */
  userId: Id;
  /** A bearer JWT, sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Called before every request, for tokens that refresh. Wins over `token`. */
  getToken?: () => string | Promise<string>;
  /** A server-side API key (`X-API-Key`); never ship one to a public page. */
  apiKey?: string;
  /** Events per request (at most 100). Default 20. */
  batchSize?: number;
  /** Send this long after the first waiting event. Default 1000 ms. */
  flushIntervalMs?: number;
  /** Waiting events kept at most; the oldest are dropped beyond it. Default 1000. */
  maxQueue?: number;
  /** Retries of one batch after 5xx, 429 or a network error. Default 6. */
  maxRetries?: number;
  /** Backoff base: attempt n waits a random time up to min(max, base * 2^n). Default 500 ms. */
  backoffMs?: number;
  /** Default 30,000 ms; also caps Retry-After. */
  maxBackoffMs?: number;
  requestTimeoutMs?: number;
  /** Inactivity gap that starts a new session. Default 30 minutes. */
  sessionGapMs?: number;
  /** Where session ids live. Default sessionStorage when usable; null keeps them in memory. */
  storage?: StorageLike | null;
  /**
   * A first-party collector for navigator.sendBeacon, used on page hide only where
   * keepalive fetch is missing. A beacon carries no headers: the collector must
   * authenticate the user itself (e.g. by cookie) and forward with its own key.
   */
  beaconUrl?: string;
  /** Whether fetch supports `keepalive`. Default: detected. */
  keepalive?: boolean;
  onError?: (report: ErrorReport) => void;
  onSent?: (report: { events: RecstreamEvent[]; response: TrackAccepted }) => void;
  // Injection points for tests and non-browser runtimes.
  fetch?: typeof fetch;
  now?: () => number;
  random?: () => number;
  timers?: Timers;
  navigator?: { sendBeacon(url: string, data: Blob): boolean } | null;
  newId?: () => string;
  /** Where to listen for `pagehide`. Default: window. */
  lifecycleTarget?: EventTarget | null;
}

export declare function uuid4(cryptoImpl?: Crypto): string;
export declare function checkEvent(event: Record<string, unknown>): void;
export declare function retryDelay(
  attempt: number,
  retryAfter: string | null | undefined,
  options: { baseMs: number; maxMs: number; now: () => number; random: () => number },
): number;

export declare class SessionTracker {
  constructor(options: { storage: StorageLike | null; gapMs?: number; newId: () => string });
  touch(userId: Id, at: number): string;
  peek(userId: Id, at: number): string | null;
  reset(userId: Id): void;
}

export declare class RecstreamClient {
  constructor(options: ClientOptions);
  readonly userId: Id;
  readonly queue: RecstreamEvent[];
  /** Queue one event; throws TypeError when it breaks the contract. */
  track<T extends EventType>(eventType: T, fields: EventFields<T>): RecstreamEvent<T>;
  /** The current session id, or null before the first event and after the inactivity gap. */
  session(): string | null;
  /** The next event starts a new session. */
  newSession(): void;
  /** Send every waiting event now (a failed batch waits for its retry). */
  flush(): Promise<void>;
  /** Hand waiting events to keepalive fetch (or the beacon collector); the count handed over. */
  flushOnHide(): number;
  /** Remove the page listeners and send what waits. */
  close(): Promise<void>;
}
