"""The core's recomputation results, erasure receipts and ranker listings as API
responses (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from recstream.apply.operations import ErasureReceipt, Recomputation
from recstream.model.features import timestamp
from recstream_api.admin_schemas import (
    ErasedData,
    ErasureResponse,
    ExtractBatchResponse,
    FeatureDifference,
    RankersResponse,
    UserRecomputation,
)
from recstream_api.health import ranker_health
from recstream_api.rankers import RankerListing


def _recomputation(result: Recomputation) -> UserRecomputation:
    differences = result.check.differences if result.check is not None else {}
    return UserRecomputation(
        user_id=result.user_id,
        status=result.status,
        state_differs=result.state_differs,
        differences={
            name: FeatureDifference(stored=stored, recomputed=recomputed)
            for name, (stored, recomputed) in differences.items()
        },
    )


def extract_view(
    results: Sequence[Recomputation], write: bool, next_cursor: int | None, now: datetime
) -> ExtractBatchResponse:
    return ExtractBatchResponse(
        computed_at=now,
        write=write,
        users=[_recomputation(r) for r in results],
        summary=dict(Counter(r.status for r in results)),
        next_cursor=str(next_cursor) if next_cursor else None,
    )


def erasure_view(receipt: ErasureReceipt, requested_by: str) -> ErasureResponse:
    plan = receipt.plan
    return ErasureResponse(
        user_id=receipt.user_id,
        erased=receipt.erased,
        erased_at=timestamp(receipt.erased_at),
        requested_by=requested_by,
        removed=ErasedData(
            history_events=plan.history_events,
            items=plan.items,
            sessions=[key.split("|", 1)[-1] for key in plan.sessions],
            statistic_updates=len(plan.ops),
        ),
    )


def rankers_view(listing: RankerListing) -> RankersResponse:
    return RankersResponse(
        versions=listing.versions, active=listing.active, serving=ranker_health(listing.status)
    )
