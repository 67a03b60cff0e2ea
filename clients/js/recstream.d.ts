// Types of the recstream client (recstream.js). They mirror the event contract of
// shared/src/recstream/events.py (schema version 1, docs/events.md) and the answers of the
// recommendation endpoints (services/api/src/recstream_api/recommendation_schemas.py).

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
  /** The `recommendation_id` of the list the user acted on (a click on a recommended item). */
  recommendation_id?: Id;
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
/** How long events handed to keepalive fetch on page hide are sent again by the next page. */
export declare const RESEND_WINDOW_MS: number;

/** The API's answer to an accepted batch (202). */
export interface TrackAccepted {
  accepted: number;
  event_ids: string[];
  events: { event_id: string; partition: number; offset: number }[];
  /** The batch's bad events (not published), by their index in the batch. */
  rejected: RejectedEvent[];
}

export interface RejectedEvent {
  index: number;
  event_id: string | null;
  errors: { loc: string; msg: string; type: string }[];
}

export type ErrorReport =
  | { kind: "queue_full"; events: RecstreamEvent[] }
  | { kind: "gave_up"; status: number; events: RecstreamEvent[] }
  | { kind: "rejected"; status: number; body: unknown; events: RecstreamEvent[];
      /** When the API published the rest of the batch: why each of these was refused. */
      reasons?: RejectedEvent[] }
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
   * Where unsent events wait across page loads (default: localStorage; null: memory
   * only). Events handed to keepalive fetch as the page was hidden are sent again by
   * the next page within RESEND_WINDOW_MS (the API's duplicates are dropped by event_id).
   */
  queueStorage?: StorageLike | null;
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

// ---- reads ---------------------------------------------------------------------------

export type ItemKind = "product" | "group";

/** An item: a product or a group deal. */
export interface ItemRef {
  kind: ItemKind;
  id: Id;
}

/** Business filters of a recommendations request (applied before the top-K cut). */
export interface RecommendationFilters {
  /** Drop products bought and groups joined. Default: the API's setting. */
  exclude_purchased?: boolean | null;
  /** Drop products in the user's cart. Default: the API's setting. */
  exclude_in_cart?: boolean | null;
  include_categories?: string[] | null;
  exclude_categories?: string[];
  exclude_product_ids?: Id[];
  exclude_group_ids?: Id[];
  /** Diversity: at most this many items per category. */
  max_per_category?: number | null;
}

/** Products, groups or both. Default: the API's setting (both). */
export type KindFilter = "products" | "groups" | "both";

/** The `context` of a recommendations request. */
export interface PageContext {
  product_id?: Id;
  group_id?: Id;
  shown_product_ids?: Id[];
  shown_group_ids?: Id[];
  page?: string;
}

export interface RecommendationsOptions {
  /** 1..100. Default: the API's (10). */
  limit?: number;
  kind?: KindFilter;
  filters?: RecommendationFilters;
  /** The item the page is about: never returned; the sequential component starts from it. */
  currentItem?: ItemRef | null;
  /** Other items the page shows: never returned. */
  shownItems?: ItemRef[];
  /** The page type, e.g. "home", "product", "cart" (context.page). */
  page?: string;
  /** Whether items already seen in the current session may come back. Default: false. */
  includeSeen?: boolean;
  /** Each item's top feature contributions when a learned model ranks. Default: false. */
  includeReasons?: boolean;
  /** Whose recommendations (admins). Default: the token's user; the client's with an API key. */
  userId?: Id;
}

export interface SessionRecommendationsOptions {
  limit?: number;
  kind?: KindFilter;
  /** The item the page is about: never returned. */
  currentItem?: ItemRef | null;
  includeSeen?: boolean;
  userId?: Id;
}

export interface NextProductsOptions {
  /** Predict what follows this product (never returned); default: the session's items. */
  productId?: Id | null;
  limit?: number;
  includeSeen?: boolean;
  userId?: Id;
}

export type SourceName = "content" | "sequential" | "session" | "popular" | "cold_start";

export interface ComponentScores {
  content: number;
  sequential: number;
  session: number;
  popular: number;
}

export interface IntentView {
  kind: "transactional" | "research" | "browsing" | "deal_seeking" | "group_seeking" | "unknown";
  confidence: number;
  scores: Record<string, number>;
  signals: Record<string, number>;
}

export interface BlendWeights {
  content: number;
  sequential: number;
  session: number;
}

export interface Watermark {
  partition: number;
  offset: number;
}

export interface RecommendedItem {
  rank: number;
  kind: ItemKind;
  id: Id;
  score: number;
  source: SourceName;
  components: ComponentScores;
  category: string | null;
  /** The user already saw it in the current session. */
  seen_in_session: boolean;
  /** Learned model, with includeReasons: the features that raised its score most. */
  reasons: FeatureContribution[];
}

export interface FeatureContribution {
  feature: string;
  contribution: number;
}

export interface RecommendationsResponse {
  user_id: Id;
  source: SourceName;
  cold_start: boolean;
  /** What ranked the items: a learned model's version, or "blend". */
  ranker: string;
  intent: IntentView;
  weights: BlendWeights;
  items: RecommendedItem[];
  /** RFC 3339. */
  computed_at: string;
  watermark: Watermark | null;
  /** This list's id: pass it as `recommendation_id` when tracking a click on one of its items. */
  recommendation_id: string;
  /** What ranked the list, as its outcomes are counted ("blend", "ranker-<version>", ...). */
  variant: string;
}

export interface SessionView {
  session_id: string;
  started_at: string;
  last_event_at: string;
  events: number;
  /** In event order, oldest first. */
  items: ItemRef[];
  counts: Record<string, number>;
  categories: Record<string, number>;
}

export interface SessionRecommendationsResponse {
  user_id: Id;
  /** Null: no session within the session gap. */
  session: SessionView | null;
  intent: IntentView;
  source: SourceName;
  /** Always "blend": session recommendations are ranked by the blend. */
  ranker: string;
  weights: BlendWeights;
  items: RecommendedItem[];
  computed_at: string;
  watermark: Watermark | null;
  /** This list's id: pass it as `recommendation_id` when tracking a click on one of its items. */
  recommendation_id: string;
  /** What ranked the list, as its outcomes are counted ("blend", "ranker-<version>", ...). */
  variant: string;
}

export interface NextProduct {
  rank: number;
  product_id: Id;
  score: number;
  source: SourceName;
  components: ComponentScores;
  seen_in_session: boolean;
}

export interface SimilarItemsOptions {
  /** The item on screen (never returned). */
  item: ItemRef;
  limit?: number;
  kind?: "products" | "groups" | "both";
}

export interface TrendingOptions {
  category?: string | null;
  limit?: number;
  kind?: "products" | "groups" | "both";
}

/** An item of a shared list, with the statistics that placed it. */
export interface ListedItem {
  rank: number;
  kind: "product" | "group";
  id: Id;
  /** In [0, 1]. */
  score: number;
  category: string | null;
  /** similar: viewed_together, same_shoppers, viewed_next; trending: popularity. */
  components: Record<string, number>;
}

export interface SimilarItemsResponse {
  item: ItemRef;
  computed_at: string;
  items: ListedItem[];
  /** This list's id when a user asked (null with an API key): pass it to `clicked`. */
  recommendation_id: string | null;
  /** "similar-items". */
  variant: string;
}

export interface TrendingResponse {
  category: string | null;
  computed_at: string;
  items: ListedItem[];
  /** This list's id when a user asked (null with an API key): pass it to `clicked`. */
  recommendation_id: string | null;
  /** "trending". */
  variant: string;
}

/** POST /identify's answer. */
export interface IdentifyResponse {
  user_id: Id;
  anonymous_id: Id;
  /** Events of the anonymous id published again as the user's; 0: nothing left to merge. */
  merged_events: number;
  /** The anonymous id is erased up to this time (its latest event). */
  merged_at: string | null;
  event_ids: string[];
}

/**
 * The anonymous id and token of a shopper who has not signed in (POST /anonymous), kept
 * in localStorage; renewed for the same id within RENEW_BEFORE_MS of its expiry.
 */
export declare class AnonymousCredentials {
  constructor(options?: {
    endpoint?: string;
    fetch?: typeof fetch;
    /** Default localStorage; null keeps the credentials in memory. */
    storage?: StorageLike | null;
    now?: () => number;
  });
  readonly anonymousId: Id | null;
  /** Where the latest event of this id went, kept across pages (identify waits for it). */
  readonly lastPosition: { partition: number; offset: number } | null;
  remember(position: { partition: number; offset: number }): void;
  /**
   * A valid token: the stored one, renewed (within an hour of expiry, or in the second
   * half of a shorter lifetime), or a new id's when the old one expired or was refused.
   */
  token(): Promise<string>;
  /** Forget the anonymous id. */
  clear(): void;
}

export declare const ANONYMOUS_KEY: string;
export declare const RENEW_BEFORE_MS: number;

export interface NextProductsResponse {
  user_id: Id;
  /** The product asked about; null: the session's items. */
  product_id: Id | null;
  anchors: ItemRef[];
  items: NextProduct[];
  computed_at: string;
  watermark: Watermark | null;
  /** This list's id: pass it as `recommendation_id` when tracking a click on one of its items. */
  recommendation_id: string;
  /** What ranked the list, as its outcomes are counted ("blend", "ranker-<version>", ...). */
  variant: string;
}

/** The API's error body: `{"error": {...}}`. */
export interface ApiErrorBody {
  error: { code: string; message: string; details: unknown; request_id: string | null };
}

/** A read answered with a non-2xx status. */
export declare class RecstreamApiError extends Error {
  constructor(method: string, path: string, status: number, body: unknown);
  /** The HTTP status. */
  readonly status: number;
  /** The API's error code, e.g. "invalid_request"; null without an error body. */
  readonly code: string | null;
  readonly requestId: string | null;
  /** The parsed answer (an {@link ApiErrorBody} from the API), or null when it is not JSON. */
  readonly body: unknown;
}

/** The `context` of a recommendations request; null when there is nothing to say. */
export declare function pageContext(options?: {
  currentItem?: ItemRef | null;
  shownItems?: ItemRef[];
  page?: string | null;
}): PageContext | null;

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
  /** Continue session `id` as `userId`'s. */
  adopt(userId: Id, id: string, at: number): void;
  reset(userId: Id): void;
}

export declare class RecstreamClient {
  constructor(options: ClientOptions);
  /**
   * A client for a shopper who has not signed in: an anonymous id and token from the API
   * (POST /anonymous), kept in localStorage and renewed before expiry.
   */
  static anonymous(
    options?: Omit<ClientOptions, "userId" | "token" | "getToken" | "apiKey"> & {
      anonymous?: AnonymousCredentials;
      /** Where the anonymous credentials live. Default localStorage. */
      anonymousStorage?: StorageLike | null;
    },
  ): Promise<RecstreamClient>;
  readonly userId: Id;
  readonly queue: RecstreamEvent[];
  /** The anonymous credentials of a client of `anonymous()`; null once signed in. */
  readonly anonymous: AnonymousCredentials | null;
  /** Where the latest event the API published went; identify() waits for it. */
  readonly lastPosition: { partition: number; offset: number } | null;
  /**
   * The shopper signed in: send what waits, merge the anonymous history into `userId`
   * (POST /identify), then carry on as that user in the same session (events queued
   * meanwhile go as the user's). Rejects with a RecstreamApiError (e.g. 503
   * consumer_behind: call again), or an Error while events still wait to be sent, and
   * stays anonymous then.
   */
  identify(options: {
    userId: Id;
    token?: string;
    getToken?: () => string | Promise<string>;
  }): Promise<IdentifyResponse>;
  /** Queue one event; throws TypeError when it breaks the contract. */
  track<T extends EventType>(eventType: T, fields: EventFields<T>): RecstreamEvent<T>;
  /**
   * The shopper opened `item` from `list`: a product_view or group_view naming the list's
   * recommendation_id, so the click counts for the variant that ranked the list.
   */
  clicked(
    list: { recommendation_id: string },
    item: ItemRef | NextProduct,
    fields?: Partial<OptionalFields>,
  ): RecstreamEvent<"product_view" | "group_view">;
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
  /**
   * POST /recommendations: ranked products and group deals. Rejects with a
   * {@link RecstreamApiError} on a non-2xx answer, with a TypeError on a malformed item.
   */
  recommendations(options?: RecommendationsOptions): Promise<RecommendationsResponse>;
  /** GET /session/recommendations: from the current session, with its intent. */
  sessionRecommendations(
    options?: SessionRecommendationsOptions,
  ): Promise<SessionRecommendationsResponse>;
  /** GET /sequential/next-products: the products most likely to come next. */
  nextProducts(options?: NextProductsOptions): Promise<NextProductsResponse>;
  similarItems(options: SimilarItemsOptions): Promise<SimilarItemsResponse>;
  trending(options?: TrendingOptions): Promise<TrendingResponse>;
}
