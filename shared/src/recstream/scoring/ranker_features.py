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
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from recstream.contract.items import is_group
from recstream.contract.units import DAY
from recstream.model.config import CoreConfig
from recstream.model.ratings import implicit_rating
from recstream.readmodel.context import RecommendationContext
from recstream.scoring.candidates import SOURCES, Candidates
from recstream.scoring.config import ScoringConfig
from recstream.scoring.content import content_scorer, factors_of, log_price
from recstream.scoring.groups import deal_factor
from recstream.scoring.intent import INTENTS, infer_intent
from recstream.scoring.items import category_of
from recstream.scoring.popular import preferred_categories

NAN = math.nan
_RANKED = ("sequential", "session", "stan", "covisitation", "co_engagement")
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
    # a group deal is described by its product's evidence
    evidence = [candidates.groups.get(item, item) for item in items]
    columns: list[list[float]] = []
    for source in SOURCES:
        scores = candidates.scores.get(source, {})
        columns.append([scores.get(e, 0.0) for e in evidence])
    for source in _RANKED:
        ranks = candidates.ranks.get(source, {})
        columns.append([float(ranks[e]) if e in ranks else NAN for e in evidence])
    holding = Counter(item for scores in candidates.scores.values() for item in scores)
    columns.append([float(holding[e]) for e in evidence])
    columns += _item_columns(ctx, items, evidence, config, core)
    matrix = np.empty((len(items), len(FEATURES)), dtype=np.float64)
    if items:
        matrix[:, : len(columns)] = np.array(columns, dtype=np.float64).T
        matrix[:, len(columns) :] = np.array(_context_row(ctx, config), dtype=np.float64)
    return matrix


def _item_columns(
    ctx: RecommendationContext,
    items: tuple[str, ...],
    evidence: list[str],
    config: ScoringConfig,
    core: CoreConfig,
) -> list[list[float]]:
    """The ``content_score`` column, then one column per :data:`ITEM_FEATURES`."""
    now = ctx.now
    session = ctx.session
    in_session: dict[str, int] = {}  # item -> steps back from the session's end
    if session is not None:
        for steps, item in enumerate(reversed(session.items), start=1):
            in_session.setdefault(item, steps)
    session_categories = session.categories if session else {}
    session_events = max(1, sum(session_categories.values()))
    preferences = preferred_categories(ctx, core)
    prices = ctx.state.prices
    centre = prices.engaged_mean if prices.engaged > 0 else None
    popular, popular_best = ctx.popular, max(ctx.popular.values(), default=0.0)
    content = content_scorer(ctx, items, config, core)
    catalog, user_items = ctx.catalog, ctx.state.items
    rows: list[tuple[float, ...]] = []
    for item, seen_as in zip(items, evidence, strict=True):
        entry = catalog.get(item)
        category = category_of(ctx, item)
        stats = user_items.get(item)
        seen = in_session.get(seen_as)
        group = is_group(item)
        price = entry.price if entry is not None else None
        created = entry.created_at if entry is not None else None
        rows.append(
            (
                content.score(factors_of(ctx, content.profile, item, entry, category, config)),
                1.0 if group else 0.0,
                deal_factor(entry, now, config) if entry is not None and group else NAN,
                popular.get(seen_as, 0.0) / popular_best if popular_best > 0 else 0.0,
                session_categories.get(category, 0) / session_events if category else NAN,
                preferences.get(category, 0.0) if category else NAN,
                log_price(price) - centre if price is not None and centre is not None else NAN,
                (now - created) / DAY if created is not None else NAN,
                implicit_rating(item, stats, now, core).rating if stats is not None else 0.0,
                1.0 if seen is not None else 0.0,
                float(seen) if seen is not None else NAN,
            )
        )
    return (
        [list(column) for column in zip(*rows, strict=True)]
        if rows
        else [[] for _ in range(1 + len(ITEM_FEATURES))]
    )
