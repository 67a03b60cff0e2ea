"""The learned ranker's features of (user, candidate) pairs: one code path for training
and serving.

``recstream train`` and the API both call :func:`feature_matrix` on a loaded
:class:`~recstream.readmodel.context.RecommendationContext` and the request's
:class:`~recstream.scoring.candidates.Candidates`, so the model is served exactly
the features it was trained on. Groups of features (used by the ablation and the
explanations):

- ``source``: each candidate source's normalised score and rank, the number of
  sources holding the candidate, the blend's content score;
- ``item``: the item's kind, group deal state, popularity, category match with the
  session and the user, price against the user's price band, catalogue age, the
  user's own implicit rating, whether and how recently it was seen in the session;
- ``context``: the session's length and age, time since the last event, the inferred
  intent, the user's activity.

A value that is unknown (no price, no catalogue entry) is NaN, which LightGBM
treats as missing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import repeat

import numpy as np
import numpy.typing as npt

from recstream.contract.items import GROUP_PREFIX
from recstream.contract.units import DAY
from recstream.model.config import CoreConfig
from recstream.readmodel.context import RecommendationContext
from recstream.scoring.candidates import SOURCES, Candidates
from recstream.scoring.config import ScoringConfig
from recstream.scoring.content import FACTORS, ContentScorer, content_scorer, engagement_of
from recstream.scoring.groups import deal_factor
from recstream.scoring.intent import INTENTS, infer_intent
from recstream.scoring.items import category_in
from recstream.scoring.popular import preferred_categories

NAN = math.nan
_RANKED = ("sequential", "session", "stan", "covisitation", "co_engagement")
_RANK_COLUMN = {source: column for column, source in enumerate(_RANKED)}
SOURCE_FEATURES: tuple[str, ...] = (
    *(f"{s}_score" for s in SOURCES),
    *(f"{s}_rank" for s in _RANKED),
    "sources",
    "content_score",
)
ITEM_FEATURES: tuple[str, ...] = (
    "is_group",
    "deal",
    "popularity",
    "category_in_session",
    "category_preference",
    "price_vs_user",
    "age_days",
    "user_rating",
    "seen_in_session",
    "steps_since_seen",
)
CONTEXT_FEATURES: tuple[str, ...] = (
    "session_length",
    "session_minutes",
    "minutes_since_last_event",
    "user_events",
    "intent_confidence",
    *(f"intent_{kind}" for kind in INTENTS),
    "anchors",
    "neighbours",
)
FEATURES: tuple[str, ...] = (*SOURCE_FEATURES, *ITEM_FEATURES, *CONTEXT_FEATURES)
FEATURE_GROUPS: Mapping[str, tuple[str, ...]] = {
    "source": SOURCE_FEATURES,
    "item": ITEM_FEATURES,
    "context": CONTEXT_FEATURES,
}


def features_for(sources: Sequence[str], without: Sequence[str] = ()) -> tuple[str, ...]:
    """:data:`FEATURES` of a model over these candidate sources: the score and rank of
    every other source are left out, and so are the named groups (the ablation)."""
    dropped = {f for group in without for f in FEATURE_GROUPS[group]}
    dropped |= {f"{s}_{kind}" for s in SOURCES if s not in sources for kind in ("score", "rank")}
    return tuple(f for f in FEATURES if f not in dropped)


Matrix = npt.NDArray[np.float64]


def _context_row(ctx: RecommendationContext, config: ScoringConfig) -> list[float]:
    session = ctx.session
    intent = infer_intent(session, config)
    last_at = ctx.state.last_at
    return [
        float(len(session.items)) if session else 0.0,
        (session.last_at - session.started_at) / 60.0 if session else NAN,
        (ctx.now - last_at) / 60.0 if last_at is not None else NAN,
        math.log1p(ctx.state.total_events),
        intent.confidence,
        *(intent.scores.get(kind, 0.0) for kind in INTENTS),
        float(len(ctx.anchors)),
        math.log1p(len(ctx.neighbours)),
    ]


def feature_matrix(
    ctx: RecommendationContext,
    candidates: Candidates,
    config: ScoringConfig,
    core: CoreConfig,
) -> Matrix:
    """One row of :data:`FEATURES` per candidate, in ``candidates.items`` order."""
    items = candidates.items
    matrix = np.empty((len(items), len(FEATURES)), dtype=np.float64)
    if not items:
        return matrix
    _source_block(matrix, candidates)
    # a group deal is described by its product's evidence
    evidence = list(map(candidates.groups.get, items, items))
    start = len(SOURCE_FEATURES) - 1
    end = start + 1 + len(ITEM_FEATURES)
    matrix[:, start:end] = _item_columns(ctx, items, evidence, config, core)
    matrix[:, end:] = _context_row(ctx, config)
    return matrix


def _source_block(matrix: Matrix, candidates: Candidates) -> None:
    """The source features but ``content_score``: each source writes the rows of its own
    items (at most ``per_source``), the others keep 0 (score) or NaN (rank)."""
    row = dict(zip(candidates.items, range(len(candidates.items)), strict=True))
    row_of = row.__getitem__
    scores = matrix[:, : len(SOURCES)]
    scores.fill(0.0)
    ranks = matrix[:, len(SOURCES) : len(SOURCES) + len(_RANKED)]
    ranks.fill(NAN)
    held_rows = [np.empty(0, np.intp)]
    for column, source in enumerate(SOURCES):
        held = candidates.scores.get(source)
        if not held:
            continue
        rows = np.fromiter(map(row_of, held), np.intp, len(held))
        scores[rows, column] = np.fromiter(held.values(), np.float64, len(held))
        held_rows.append(rows)
        ranked = candidates.ranks.get(source)
        if source in _RANK_COLUMN and ranked:  # the same items as ``held``
            values = np.fromiter(map(ranked.__getitem__, held), np.float64, len(held))
            ranks[rows, _RANK_COLUMN[source]] = values
    holding = len(SOURCES) + len(_RANKED)  # the column: how many sources hold the item
    matrix[:, holding] = np.bincount(np.concatenate(held_rows), minlength=len(row))
    for group, product in candidates.groups.items():
        matrix[row[group], : holding + 1] = matrix[row[product], : holding + 1]


def _content_column(
    scorer: ContentScorer,
    category_match: Matrix,
    engagement: Matrix,
    prices: Matrix,
    created: Matrix,
    now: float,
    config: ScoringConfig,
) -> Matrix:
    """The blend's content score (``scorer.score(content.factors_of(...))``) of many items
    at once, from columns of their factors and attributes (NaN where unknown): the same
    formula on numpy columns, equal to it within float rounding."""
    value = np.zeros(len(engagement))
    if scorer.total <= 0:
        return value
    profile = scorer.profile
    for index, weight in scorer.terms:
        factor = FACTORS[index]
        if factor == "category":
            column = category_match
        elif factor == "engagement":
            column = engagement
        elif factor == "price" and profile.price_center is not None:
            z = (np.log(np.maximum(prices, 0.01)) - profile.price_center) / profile.price_std
            column = np.exp(-0.5 * z * z)
        elif factor == "recency":
            age = np.maximum(0.0, now - created)
            column = np.power(2.0, -age / (config.item_recency_half_life_days * DAY))
        else:
            continue
        value += weight * np.where(np.isnan(column), 0.0, column)  # unknown counts 0
    return value / scorer.total


def _item_columns(
    ctx: RecommendationContext,
    items: tuple[str, ...],
    evidence: list[str],
    config: ScoringConfig,
    core: CoreConfig,
) -> Matrix:
    """A row per candidate: its ``content_score``, then its :data:`ITEM_FEATURES`.

    Built column by column: each look-up is a ``map`` or a comprehension over the
    candidates, the per-item work (deals, ratings) is done for the items that have it,
    and the arithmetic is done on the numpy columns."""
    now = ctx.now
    session = ctx.session
    in_session: dict[str, int] = {}  # item -> steps back from the session's end
    if session is not None:
        for back, item in enumerate(reversed(session.items), start=1):
            in_session.setdefault(item, back)
    session_categories = session.categories if session else {}
    preferences = preferred_categories(ctx, core)
    content = content_scorer(ctx, items, config, core)
    profile = content.profile
    catalog = ctx.catalog
    popular = ctx.popular
    count = len(items)
    entries = list(map(catalog.get, items))
    categories = [
        entry.category
        if entry is not None and entry.category is not None
        else category_in(ctx, item, entry)
        for item, entry in zip(items, entries, strict=True)
    ]
    engagement = np.fromiter(map(profile.ratings.get, items, repeat(0.0)), np.float64, count)
    groups = np.zeros(count)
    deals = np.full(count, NAN)
    for row in [row for row, item in enumerate(items) if item.startswith(GROUP_PREFIX)]:
        entry = entries[row]
        groups[row] = 1.0
        engagement[row] = engagement_of(profile, items[row], entry)
        if entry is not None:
            deals[row] = deal_factor(entry, now, config)
    # None (no catalog entry, or no value) becomes NaN
    prices = np.array([e.price if e is not None else None for e in entries], np.float64)
    created_at = np.array([e.created_at if e is not None else None for e in entries], np.float64)
    # the category columns: each distinct category's value, then one look-up per row
    # (no category: NaN; the empty one: NaN but for the match with the user's preferences)
    distinct = [c for c in dict.fromkeys(categories) if c is not None]
    match: dict[str | None, float] = {c: profile.category_prefs.get(c, 0.0) for c in distinct}
    share: dict[str | None, float] = {
        c: float(session_categories.get(c, 0)) if c else NAN for c in distinct
    }
    prefer: dict[str | None, float] = {c: preferences.get(c, 0.0) if c else NAN for c in distinct}
    category_match, in_category, preference = (
        np.fromiter(map(values.get, categories, repeat(NAN)), np.float64, count)
        for values in (match, share, prefer)
    )
    popularity = np.fromiter(map(popular.get, evidence, repeat(0.0)), np.float64, count)
    steps = np.fromiter(map(in_session.get, evidence, repeat(NAN)), np.float64, count)
    # the user's implicit rating of the item, 0 when they have none (as in the profile)
    rating = np.fromiter(map(profile.item_ratings.get, items, repeat(0.0)), np.float64, count)
    popular_best = max(popular.values(), default=0.0)
    user_prices = ctx.state.prices
    return np.column_stack(
        (
            _content_column(content, category_match, engagement, prices, created_at, now, config),
            groups,
            deals,
            popularity / popular_best if popular_best > 0 else np.zeros(len(items)),
            in_category / max(1, sum(session_categories.values())),
            preference,
            np.log(np.maximum(prices, 0.01)) - user_prices.engaged_mean
            if user_prices.engaged > 0
            else np.full(len(items), NAN),
            (now - created_at) / DAY,
            rating,
            ~np.isnan(steps),
            steps,
        )
    )
