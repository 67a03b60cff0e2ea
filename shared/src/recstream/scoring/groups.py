"""Group-buying: recommending group deals to join, not only products.

A group deal inherits the appeal of its product: for every component, an
open group scores at least its product's score times the group's *deal
factor*. The deal factor grows from ``group_deal_floor`` (an empty group with
no deadline) to 1 with the fill ratio (social proof, and this user's join
may complete it) and with the urgency of its closing time (within
``group_closing_horizon_hours``).
"""

from __future__ import annotations

from collections.abc import Mapping

from recstream.contract.catalog import CatalogItem
from recstream.contract.items import product_key
from recstream.contract.units import HOUR
from recstream.readmodel.context import RecommendationContext
from recstream.scoring.config import ScoringConfig


def deal_factor(entry: CatalogItem, now: float, config: ScoringConfig) -> float:
    """How attractive joining this group is right now, in [group_deal_floor, 1]."""
    fill = 0.0
    if entry.target_size:
        fill = min(1.0, entry.current_size / entry.target_size)
    urgency = 0.0
    if entry.closes_at is not None:
        left = entry.closes_at - now
        horizon = config.group_closing_horizon_hours * HOUR
        urgency = min(1.0, max(0.0, 1.0 - left / horizon)) if left > 0 else 0.0
    floor = config.group_deal_floor
    return floor + (1.0 - floor) * (0.6 * fill + 0.4 * urgency)


def open_groups(ctx: RecommendationContext) -> dict[str, tuple[str, CatalogItem]]:
    """Joinable groups of the catalog: group item -> (its product item, entry)."""
    now = ctx.now
    groups = {
        item: (product_key(entry.product_id), entry)
        for item, entry in ctx.catalog.items()
        if entry.kind == "group" and entry.product_id is not None and entry.group_open(now)
    }
    return {item: groups[item] for item in sorted(groups)}  # by id, whatever the load order


def lift_to_groups(
    scores: Mapping[str, float],
    groups: Mapping[str, tuple[str, CatalogItem]],
    now: float,
    config: ScoringConfig,
) -> dict[str, float]:
    """``scores`` plus each open group's inherited score from its product."""
    lifted = dict(scores)
    for group, (product, entry) in groups.items():
        inherited = scores.get(product, 0.0) * deal_factor(entry, now, config)
        if inherited > lifted.get(group, 0.0):
            lifted[group] = inherited
    return lifted
