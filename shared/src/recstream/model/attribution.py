"""Attribution: which list of recommendations a user's event followed, and what the two add
to the per-variant outcome counters (pure, part of the fold).

A ``recommendation_shown`` record (the API's impression) is kept in the user's state for
``attribution_window_minutes``. A later event of the user on one of its items is
attributed to it:

- by ``recommendation_id``, when the event carries one (the app passes on the id the API
  returned): the list with that id, if the item is on it. The API writes the list's record
  from a background queue, so the app's click may reach the topic first: an event naming a
  list not seen yet waits in the user's state (``shown_cap`` of them, for the window) and
  is credited when the list arrives;
- else by (user, item, time): the latest list that showed the item at most the window
  before the event (unless ``attribution_fallback`` is off).

The counters (:data:`recstream.contract.keyspace.Stat.OUTCOMES`), per variant overall and
per variant and UTC day of the impression: ``impressions``, ``items`` (items shown), and
for each outcome (``click``: a view of the item, ``cart``, ``join``, ``purchase``) the
lists with at least one such attributed event, overall and by the item's position
(``click@3``), plus ``revenue_cents`` of attributed purchases (price x quantity, every
purchase), and for the report's interval of revenue per list, ``revenue_squares``, the sum
over lists of the square of each list's revenue in currency units, and
``revenue_capped_cents``, the sum of the lists' revenue, both with each list's revenue
capped at :data:`REVENUE_SQUARE_CAP_CENTS` (each square floored). So CTR is
``click / impressions`` and conversion ``purchase / impressions``.
They are contributions like every shared statistic, written once per record under the
shards' watermarks: exactly once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from recstream.contract.events import Event, EventType, RecommendationShown
from recstream.contract.keyspace import Stat
from recstream.model.config import CoreConfig
from recstream.model.state import Pending, Shown, UserState
from recstream.model.statistics import StatDelta

OUTCOMES: dict[EventType, str] = {
    EventType.PRODUCT_VIEW: "click",
    EventType.GROUP_VIEW: "click",
    EventType.ADD_TO_CART: "cart",
    EventType.GROUP_JOIN_COMPLETE: "join",
    EventType.PURCHASE_COMPLETED: "purchase",
}
OUTCOME_NAMES = ("click", "cart", "join", "purchase")
IMPRESSIONS = "impressions"
ITEMS_SHOWN = "items"
REVENUE = "revenue_cents"
REVENUE_SQUARES = "revenue_squares"
REVENUE_CAPPED = "revenue_capped_cents"  # the lists' revenue, each capped as in the squares
# a list's revenue counts up to this in the variance: one square fits the counter's 64 bits
# 922 million times over (100,000 currency units, squared, is 10^10)
REVENUE_SQUARE_CAP_CENTS = 10_000_000
VARIANTS_SUBJECT = "variants"  # the index of the variants that have counters
# the non-personalised lists of an item page (GET /items/similar, /items/trending): a user
# sees one on every page, so they keep at most SHARED_LISTS of the ``shown_cap`` places and
# never push the personalised lists (an experiment's) out
SIMILAR_ITEMS = "similar-items"
TRENDING = "trending"
SHARED_VARIANTS = frozenset({SIMILAR_ITEMS, TRENDING})
SHARED_LISTS = 5


def day_of(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).date().isoformat()


def daily(variant: str, day: str) -> str:
    """The subject of a variant's counters of one day."""
    return f"{variant}|{day}"


def record_shown(
    state: UserState,
    event: RecommendationShown,
    offset: int,
    config: CoreConfig,
    deltas: list[StatDelta],
) -> None:
    """Keep the list for attribution, count its impression, and credit the events that
    named it before it arrived."""
    at = event.occurred_at.timestamp()
    assert event.recommendation_id is not None  # the contract requires it
    ordered = sorted(event.items, key=lambda i: i.position)
    shown = Shown(
        event.recommendation_id, event.variant, at, day_of(at), tuple(i.item_key for i in ordered)
    )
    deltas.append(StatDelta(offset, Stat.OUTCOME_VARIANTS, VARIANTS_SUBJECT, event.variant, 0.0))
    _count(deltas, offset, shown, ((IMPRESSIONS, 1), (ITEMS_SHOWN, len(shown.items))))
    if config.shown_cap <= 0:
        return
    horizon = at - config.attribution_window_minutes * 60.0
    kept = [s for s in state.shown if s.at >= horizon]
    state.shown = _capped([*kept, shown], config.shown_cap)
    if not state.pending:
        return
    waiting = [p for p in state.pending if p.recommendation_id == shown.recommendation_id]
    state.pending = [p for p in state.pending if p.recommendation_id != shown.recommendation_id]
    for early in waiting:
        if early.item in shown.items and early.at - at <= config.attribution_window_minutes * 60:
            _credit(state, len(state.shown) - 1, early, offset, deltas)


def _capped(shown: list[Shown], cap: int) -> list[Shown]:
    """The latest ``cap`` lists, of which at most :data:`SHARED_LISTS` non-personalised."""
    shared = [i for i, s in enumerate(shown) if s.variant in SHARED_VARIANTS]
    if len(shared) > SHARED_LISTS:
        dropped = set(shared[: len(shared) - SHARED_LISTS])
        shown = [s for i, s in enumerate(shown) if i not in dropped]
    return shown[-cap:]


def attribute(
    state: UserState,
    event: Event,
    item: str,
    at: float,
    offset: int,
    config: CoreConfig,
    deltas: list[StatDelta],
) -> None:
    """Count ``event`` (on ``item``, at ``at``)'s outcome for the list it followed, if any;
    an event that names a list not seen yet waits for it (within the window)."""
    outcome = OUTCOMES.get(event.event_type)
    if outcome is None or config.shown_cap <= 0:
        return
    window = config.attribution_window_minutes * 60.0
    if event.recommendation_id is None and (
        not config.attribution_fallback or not any(item in s.items for s in state.shown)
    ):
        return
    revenue = 0
    if outcome == "purchase" and event.price is not None:
        revenue = round(event.price * (event.quantity or 1) * 100)
    acted = Pending(event.recommendation_id or "", item, outcome, at, revenue)
    if event.recommendation_id is not None:
        index = _named(state.shown, event.recommendation_id)
        if index is None:  # its list is not here yet: it may still come
            waiting = [p for p in state.pending if p.at >= at - window]
            state.pending = [*waiting, acted][-config.shown_cap :]
            return
        shown = state.shown[index]
        if item not in shown.items or at - shown.at > window:
            return
    else:
        index = _latest_showing(state.shown, item, at, window)
        if index is None:
            return
    _credit(state, index, acted, offset, deltas)


def _credit(
    state: UserState, index: int, acted: Pending, offset: int, deltas: list[StatDelta]
) -> None:
    """Count ``acted`` for list ``index``: its outcome once per list, revenue every time."""
    shown = state.shown[index]
    counts: list[tuple[str, int]] = []
    if acted.outcome not in shown.credited.split(","):
        position = shown.items.index(acted.item) + 1
        counts += [(acted.outcome, 1), (f"{acted.outcome}@{position}", 1)]
        credited = f"{shown.credited},{acted.outcome}" if shown.credited else acted.outcome
        state.shown[index] = shown._replace(credited=credited)
    if acted.revenue_cents:
        before = state.shown[index].revenue_cents
        after = before + acted.revenue_cents
        state.shown[index] = state.shown[index]._replace(revenue_cents=after)
        counts.append((REVENUE, acted.revenue_cents))
        squares = revenue_square(after) - revenue_square(before)
        if squares:
            counts.append((REVENUE_SQUARES, squares))
        capped = min(after, REVENUE_SQUARE_CAP_CENTS) - min(before, REVENUE_SQUARE_CAP_CENTS)
        if capped:
            counts.append((REVENUE_CAPPED, capped))
    _count(deltas, offset, shown, counts)


def revenue_square(cents: int) -> int:
    """A list's revenue (capped) squared, in currency units squared, floored: the
    increments of one list add up to the square of its final revenue exactly."""
    capped = min(cents, REVENUE_SQUARE_CAP_CENTS)
    return capped * capped // 10_000


def _named(shown: list[Shown], recommendation_id: str) -> int | None:
    return next(
        (
            i
            for i in range(len(shown) - 1, -1, -1)
            if shown[i].recommendation_id == recommendation_id
        ),
        None,
    )


def _latest_showing(shown: list[Shown], item: str, at: float, window: float) -> int | None:
    return next(
        (
            i
            for i in range(len(shown) - 1, -1, -1)
            if item in shown[i].items and 0.0 <= at - shown[i].at <= window
        ),
        None,
    )


def _count(
    deltas: list[StatDelta],
    offset: int,
    shown: Shown,
    counts: tuple[tuple[str, int], ...] | list[tuple[str, int]],
) -> None:
    for subject in (shown.variant, daily(shown.variant, shown.day)):
        deltas += [StatDelta(offset, Stat.OUTCOMES, subject, name, float(n)) for name, n in counts]
