// The live demo page: a storefront whose clicks are sent with the recstream JS client, and
// panels (session and intent, recommendations with explanations, next products, profile)
// refreshed as soon as the consumer has applied the click: the profile's watermark reaches
// the offset the broker gave the event.
//
// The item on screen is the product (or group deal) the shopper opened last. Every list is
// read with it as the current item, so the API never recommends it back; the group deal of
// a product on screen (or the product of a deal on screen) is passed as shown too.
// Each list carries data-items="kind:id,..." for the browser test.
import { API_PREFIX, RecstreamClient } from "/demo/recstream.js";

const USER_PATTERN = /^demo-[a-z0-9][a-z0-9-]{0,40}$/;
const APPLY_POLL_MS = 60;
const APPLY_TIMEOUT_MS = 5000;
const EXPLAINED = 3;
const SESSION_ITEMS = 5;
const NEXT_ITEMS = 5;
const TOKEN_MARGIN_MS = 60_000; // mint a new demo token this long before the old one expires
const COMPONENTS = ["content", "sequential", "session", "popular"];

const $ = (id) => document.getElementById(id);
const state = {
  user: null, token: null, tokenExpiresAt: 0, client: null, catalog: null, names: new Map(),
  acks: new Map(), refreshing: null, dirty: false, refreshes: 0, applied: 0,
  departments: new Map(), groups: new Map(), groupOfProduct: new Map(),
  onScreen: null, // {kind: "product" | "group", id}: the item the shopper opened last
  includeSeen: false, // lists may bring back items seen in this session (tagged "seen")
};

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else if (key === "style") node.setAttribute("style", value);
    else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

async function mintToken(user) {
  const response = await fetch("/demo/token", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user_id: user }),
  });
  if (!response.ok) throw new Error(`/demo/token: HTTP ${response.status}`);
  const body = await response.json();
  return { token: body.token, expiresAt: Date.now() + body.expires_in * 1000 };
}

async function renewToken() {
  const minted = await mintToken(state.user);
  state.token = minted.token;
  state.tokenExpiresAt = minted.expiresAt;
}

/** The demo token, renewed before it expires (the client calls this before each request). */
async function freshToken() {
  if (Date.now() > state.tokenExpiresAt - TOKEN_MARGIN_MS) await renewToken();
  return state.token;
}

async function api(path, init = {}, retried = false) {
  const headers = { Authorization: `Bearer ${await freshToken()}`, ...(init.headers ?? {}) };
  const response = await fetch(`${API_PREFIX}${path}`, { ...init, headers });
  if (response.status === 401 && !retried) { // the demo token was refused: mint another
    await renewToken();
    return api(path, init, true);
  }
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function setStatus(text) {
  $("status").textContent = text;
}

function reportError(error) {
  setStatus(`error: ${error.message}`);
  console.error(error);
}

function money(value) {
  return value === null || value === undefined ? "" : `€${Number(value).toFixed(2)}`;
}

function timeLeft(iso) {
  const minutes = Math.max(0, Math.round((Date.parse(iso) - Date.now()) / 60000));
  return minutes >= 60 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min` : `${minutes} min`;
}

function itemName(kind, id) {
  return state.names.get(`${kind}:${id}`) ?? `${kind} ${id}`;
}

function itemKey(item) {
  return `${item.kind}:${item.id}`;
}

/** An explanation with item keys and category ids replaced by the storefront's names. */
function readable(reason) {
  return reason
    .replace(/\b([pg]):([^\s,;()]+?)(?=[\s,;().]|$)/g, (whole, k, id) =>
      state.names.get(`${k === "p" ? "product" : "group"}:${id}`) ?? whole)
    .replace(/\b(in|category) (\d+)\b/g, (whole, word, id) =>
      state.departments.has(id) ? `${word} ${state.departments.get(id)}` : whole);
}

// ---- storefront ------------------------------------------------------------------------

function productCard(product, group) {
  const view = () => {
    showOnScreen({ kind: "product", id: product.product_id });
    return track("product_view", {
      product_id: product.product_id, category: product.category, price: product.price,
    }, `viewed ${product.name}`);
  };
  const cart = (event) => {
    event.stopPropagation();
    track("add_to_cart", {
      product_id: product.product_id, category: product.category, price: product.price,
      quantity: 1,
    }, `added ${product.name} to the cart`);
  };
  return el("article", {
    className: `card dept-${product.department.toLowerCase()}`, tabIndex: 0,
    dataset: { testid: "product-card", productId: product.product_id }, on: { click: view },
  },
  el("div", { className: "tile" }, product.name.split(" ").pop()[0]),
  el("h3", {}, product.name),
  el("div", { className: "price" }, money(product.price)),
  el("button", { type: "button", className: "cart", dataset: { testid: "add-to-cart" },
                 on: { click: cart } }, "Add to cart"),
  group ? groupBox(group) : null);
}

function groupBox(group) {
  const view = (event) => {
    event.stopPropagation();
    showOnScreen({ kind: "group", id: group.group_id });
    track("group_view", { group_id: group.group_id, category: group.category,
                          price: group.group_price }, `looked at ${group.name}`);
  };
  const join = (event) => {
    event.stopPropagation();
    track("group_join_click", { group_id: group.group_id, category: group.category,
                                price: group.group_price }, `joined ${group.name}`);
  };
  const fill = Math.round((100 * group.current_size) / group.target_size);
  return el("div", { className: "deal", dataset: { testid: "group-deal", groupId: group.group_id },
                     on: { click: view } },
    el("div", {}, el("strong", {}, money(group.group_price)), " together · ",
       `${group.current_size}/${group.target_size} joined · closes in ${timeLeft(group.closes_at)}`),
    el("div", { className: "fill" }, el("span", { style: `width:${fill}%` })),
    el("button", { type: "button", className: "join", dataset: { testid: "join-group" },
                   on: { click: join } }, "Join group"));
}

function renderStore(catalog) {
  const byProduct = new Map(catalog.groups.map((g) => [g.product_id, g]));
  const departments = new Map();
  for (const p of catalog.products) {
    if (!departments.has(p.department)) departments.set(p.department, []);
    departments.get(p.department).push(p);
  }
  $("departments").replaceChildren(...[...departments].map(([name, products]) =>
    el("section", { className: "department" }, el("h2", {}, name),
       el("div", { className: "grid" }, products.map((p) => productCard(p, byProduct.get(p.product_id)))))));
}

// ---- the item on screen -------------------------------------------------------------------

/** The storefront element of an item: a product's card, or a group's deal box. */
function itemElement(item) {
  const selector = item.kind === "product"
    ? `[data-testid="product-card"][data-product-id="${CSS.escape(item.id)}"]`
    : `.deal[data-group-id="${CSS.escape(item.id)}"]`;
  return $("departments").querySelector(selector);
}

/** Other items the page shows with the item on screen: a product's deal, a deal's product. */
function shownWith(item) {
  if (!item) return [];
  if (item.kind === "product") {
    const group = state.groupOfProduct.get(item.id);
    return group ? [{ kind: "group", id: group }] : [];
  }
  const product = state.groups.get(item.id)?.product_id;
  return product ? [{ kind: "product", id: product }] : [];
}

/** Open `item` (null: nothing): mark it, and read the lists again without it. */
function showOnScreen(item, { reload = true } = {}) {
  const before = state.onScreen;
  for (const node of $("departments").querySelectorAll("[data-on-screen]")) {
    node.classList.remove("on-screen");
    delete node.dataset.onScreen;
  }
  state.onScreen = item;
  const marker = $("on-screen");
  if (item) {
    const node = itemElement(item);
    node?.classList.add("on-screen");
    if (node) node.dataset.onScreen = "true";
    marker.dataset.item = itemKey(item);
    marker.replaceChildren("On screen: ", el("strong", {}, itemName(item.kind, item.id)));
  } else {
    marker.dataset.item = "";
    marker.textContent = "Nothing on screen: click a product or a group deal to open it.";
  }
  const changed = (before ? itemKey(before) : "") !== (item ? itemKey(item) : "");
  if (reload && changed && state.client) refresh().catch(reportError);
}

// ---- tracking --------------------------------------------------------------------------

function logEvent(event, label) {
  const entry = el("li", { dataset: { eventId: event.event_id } },
    el("span", { className: "what" }, label), el("span", { className: "muted when" }, "sending…"));
  $("events").prepend(entry);
  while ($("events").children.length > 12) $("events").lastChild.remove();
  return entry;
}

function track(type, fields, label) {
  return follow(state.client.track(type, fields), label);
}

/** Send a tracked event now, then refresh the panels once the consumer applied it. */
async function follow(event, label) {
  const clickedAt = performance.now();
  const entry = logEvent(event, label);
  await state.client.flush();
  const ack = state.acks.get(event.event_id);
  state.acks.delete(event.event_id);
  if (!ack) {
    entry.lastChild.textContent = "not sent (see the console)";
    return;
  }
  entry.lastChild.textContent = `partition ${ack.partition}, offset ${ack.offset}`;
  const applied = await waitApplied(ack);
  const appliedMs = Math.round(performance.now() - clickedAt);
  await refresh();
  const shownMs = Math.round(performance.now() - clickedAt);
  entry.lastChild.textContent += applied ? ` · applied in ${appliedMs} ms` : " · not applied yet";
  setStatus(applied ? `${label}: applied ${appliedMs} ms after the click, panels updated after ${shownMs} ms`
                    : `${label}: sent, the consumer has not applied it within ${APPLY_TIMEOUT_MS} ms`);
  if (applied) {
    state.applied += 1;
    document.body.dataset.applied = String(state.applied);
    document.body.dataset.lastApplied = event.event_id;
  }
}

async function waitApplied(ack) {
  const deadline = performance.now() + APPLY_TIMEOUT_MS;
  while (performance.now() < deadline) {
    const profile = await api("/user-profile/behavioral");
    const mark = profile.watermark;
    if (mark && mark.partition === ack.partition && mark.offset >= ack.offset) {
      renderProfile(profile);
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, APPLY_POLL_MS));
  }
  return false;
}

// ---- panels ----------------------------------------------------------------------------

async function refresh() {
  if (state.refreshing) {
    state.dirty = true;
    return state.refreshing;
  }
  state.refreshing = (async () => {
    do {
      state.dirty = false;
      const client = state.client;
      const currentItem = state.onScreen;
      const includeSeen = state.includeSeen;
      const productOnScreen = currentItem?.kind === "product" ? currentItem.id : null;
      const [profile, session, recs, next] = await Promise.all([
        api("/user-profile/behavioral"),
        client.sessionRecommendations({ limit: SESSION_ITEMS, currentItem, includeSeen }),
        client.recommendations({ limit: 8, currentItem, shownItems: shownWith(currentItem),
                                 page: currentItem ? currentItem.kind : "home", includeSeen }),
        client.nextProducts({ productId: productOnScreen, limit: NEXT_ITEMS, includeSeen }),
      ]);
      const reasons = await Promise.all(recs.items.slice(0, EXPLAINED).map((item) =>
        api(`/recommendations/explain?${item.kind === "group" ? "group_id" : "product_id"}=${encodeURIComponent(item.id)}&include_seen=${includeSeen}`)
          .then((e) => e.reason).catch(() => null)));
      renderProfile(profile);
      renderSession(session);
      renderRecommendations(recs, reasons);
      renderNextProducts(next, productOnScreen);
      renderOutcomes(await fetch("/demo/outcomes").then((r) => r.json()));
    } while (state.dirty);
  })();
  try {
    await state.refreshing;
    state.refreshes += 1;
    document.body.dataset.refreshes = String(state.refreshes);
  } finally {
    state.refreshing = null;
  }
}

function renderProfile(profile) {
  const f = profile.features;
  const rows = [
    ["events", f.total_events], ["product views", f.product_views], ["cart adds", f.cart_adds],
    ["group joins", f.group_joins], ["purchases", f.purchases],
    ["categories", f.categories_explored],
    ["category diversity", f.category_diversity.toFixed(2)],
    ["view → click", f.view_to_click_rate.toFixed(2)],
    ["engagement", f.engagement_score.toFixed(2)], ["recency", f.recency_score.toFixed(2)],
    ["peak hour (UTC)", f.peak_activity_hour ?? "–"], ["source", profile.source],
  ];
  $("profile").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
  $("profile").dataset.totalEvents = String(f.total_events);
}

function bars(scores) {
  return Object.entries(scores).sort((a, b) => b[1] - a[1]).map(([name, share]) =>
    el("div", { className: "bar-row" }, el("span", {}, name.replace("_", " ")),
       el("span", { className: "bar" }, el("span", { style: `width:${Math.round(share * 100)}%` }))));
}

/** A "seen" tag for an item the shopper already saw in this session. */
function seenTag(item) {
  return item.seen_in_session
    ? el("span", { className: "tag seen", dataset: { testid: "seen" },
                   title: "already seen in this session" }, "seen")
    : null;
}

/** Fill a list element with `rows` and name its items in data-items. */
function fillList(list, items, rows, empty) {
  list.replaceChildren(...(rows.length ? rows : [el("li", { className: "muted empty" }, empty)]));
  list.dataset.items = items.map(itemKey).join(",");
}

function renderSession(body) {
  const intent = body.intent;
  $("intent-kind").textContent = intent.kind.replace("_", " ");
  $("intent-kind").dataset.kind = intent.kind;
  $("intent-confidence").textContent = intent.kind === "unknown" ? ""
    : `${Math.round(intent.confidence * 100)}% sure`;
  $("intent-scores").replaceChildren(...bars(intent.scores ?? {}));
  const rows = body.items.map((item) =>
    el("li", { dataset: { itemId: item.id, kind: item.kind,
                          seenInSession: String(item.seen_in_session) } },
      el("div", { className: "rec-head" },
         el("span", { className: "rec-name" }, itemName(item.kind, item.id)),
         el("span", {}, seenTag(item),
            el("span", { className: `tag ${item.kind}` },
               item.kind === "group" ? "group deal" : item.source)))));
  fillList($("session-recs"), body.items, rows, "nothing from this session yet");
  const s = body.session;
  if (!s) {
    $("session").textContent = "no session yet";
    return;
  }
  const counts = Object.entries(s.counts).map(([k, v]) => `${v} ${k.replace(/_/g, " ")}`).join(", ");
  const items = s.items.slice(-5).map((i) => itemName(i.kind, i.id)).join(" → ");
  $("session").replaceChildren(
    el("div", {}, `${s.events} events in session ${s.session_id.slice(0, 8)}: ${counts}`),
    el("div", { className: "trail" }, items));
}

function renderRecommendations(recs, reasons) {
  $("recs-source").textContent = recs.cold_start ? "(cold start)" : `(mostly ${recs.source})`;
  const list = recs.items.map((item, index) => {
    const total = COMPONENTS.reduce((sum, c) => sum + (item.components[c] ?? 0), 0) || 1;
    const parts = COMPONENTS.map((c) => el("span", {
      className: `c-${c}`, style: `width:${(100 * (item.components[c] ?? 0)) / total}%`,
      title: `${c} ${(item.components[c] ?? 0).toFixed(3)}`,
    }));
    const open = () => {
      showOnScreen({ kind: item.kind, id: item.id });
      return follow(state.client.clicked(recs, item),
                    `opened ${itemName(item.kind, item.id)} from the recommendations`);
    };
    return el("li", { className: "clickable", on: { click: open },
                      dataset: { itemId: item.id, kind: item.kind, source: item.source,
                                 seenInSession: String(item.seen_in_session) } },
      el("div", { className: "rec-head" },
         el("span", { className: "rec-name" }, itemName(item.kind, item.id)),
         el("span", {}, seenTag(item),
            el("span", { className: `tag ${item.kind}` },
               item.kind === "group" ? "group deal" : item.source))),
      el("div", { className: "stack" }, parts),
      reasons[index] ? el("div", { className: "reason" }, readable(reasons[index])) : null);
  });
  fillList($("recommendations"), recs.items, list, "nothing to recommend");
}

/** Every variant's lists shown and clicked, as the consumer counted them. */
function renderOutcomes(variants) {
  const rows = variants.map((v) => el("tr", {
    dataset: { variant: v.variant, impressions: String(v.impressions), clicks: String(v.clicks) },
  }, el("td", {}, v.variant), el("td", {}, String(v.impressions)), el("td", {}, String(v.clicks)),
     el("td", {}, `${(100 * v.ctr).toFixed(1)}%`)));
  $("outcomes").tBodies[0].replaceChildren(...rows);
}

function renderNextProducts(next, productOnScreen) {
  $("next-anchor").textContent = productOnScreen
    ? `after ${itemName("product", productOnScreen)}` : "after this session's items";
  const items = next.items.map((i) => ({ ...i, kind: "product", id: i.product_id }));
  const rows = items.map((item) =>
    el("li", { dataset: { itemId: item.id, kind: "product",
                          seenInSession: String(item.seen_in_session) } },
      el("div", { className: "rec-head" },
         el("span", { className: "rec-name" }, itemName("product", item.id)),
         el("span", {}, seenTag(item),
            el("span", { className: "tag" }, item.score.toFixed(2))))));
  fillList($("next-products"), items, rows,
           productOnScreen ? "nothing follows it yet" : "view a product to see what follows it");
}

// ---- users -----------------------------------------------------------------------------

async function switchUser(user) {
  // a new shopper: none of the previous one's events and nothing on screen
  document.body.dataset.user = "";
  $("events").replaceChildren();
  showOnScreen(null, { reload: false });
  if (state.client) await state.client.close();
  state.user = user;
  await renewToken();
  state.client = new RecstreamClient({
    endpoint: API_PREFIX, userId: user, getToken: freshToken, flushIntervalMs: 100,
    onSent: ({ response }) => {
      for (const accepted of response.events) state.acks.set(accepted.event_id, accepted);
    },
    onError: (report) => console.warn("recstream client:", report),
  });
  await refresh();
  setStatus(`shopping as ${user}`);
  document.body.dataset.user = user;
}

async function main() {
  const params = new URLSearchParams(location.search);
  const asked = params.get("user");
  const catalog = await fetch("/demo/catalog.json").then((r) => r.json());
  state.catalog = catalog;
  for (const p of catalog.products) {
    state.names.set(`product:${p.product_id}`, p.name);
    state.departments.set(p.category, p.department);
  }
  for (const g of catalog.groups) {
    state.names.set(`group:${g.group_id}`, g.name);
    state.groups.set(g.group_id, g);
    state.groupOfProduct.set(g.product_id, g.group_id);
  }
  if (!catalog.ready) {
    $("problem").hidden = false;
    $("problem").textContent = `No demo catalog: ${catalog.problem}`;
  }
  renderStore(catalog);
  showOnScreen(null, { reload: false });
  const users = [...catalog.users];
  if (asked && USER_PATTERN.test(asked) && !users.includes(asked)) users.unshift(asked);
  $("user").replaceChildren(...users.map((u) => el("option", { value: u }, u)));
  $("user").value = asked && users.includes(asked) ? asked : users[0];
  $("user").addEventListener("change", () => switchUser($("user").value).catch(reportError));
  $("include-seen").checked = state.includeSeen;
  $("include-seen").addEventListener("change", () => {
    state.includeSeen = $("include-seen").checked;
    refresh().catch(reportError);
  });
  $("new-session").addEventListener("click", () => {
    state.client.newSession();
    setStatus("the next event starts a new session");
  });
  await switchUser($("user").value);
  document.body.dataset.ready = "true";
}

main().catch(reportError);
