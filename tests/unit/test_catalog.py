from __future__ import annotations

import json

import pytest

from recstream.apply.batch import RawRecord, apply_catalog_batch
from recstream.contract.catalog import CatalogItem
from recstream.model.config import CoreConfig
from recstream.readmodel.load import load_context
from recstream.store.memory import MemoryStore

CONFIG = CoreConfig()


def record(offset: int, body: dict[str, object] | bytes) -> RawRecord:
    value = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RawRecord("catalog", 0, offset, 1_800_000_000_000, None, value)


PHONE = {"kind": "product", "product_id": "x1", "category": "phones", "price": 199.0}
DEAL = {
    "kind": "group", "group_id": "d1", "product_id": "x1", "group_price": 149.0,
    "target_size": 5, "current_size": 5, "closes_at": "2030-01-01T00:00:00Z",
}  # fmt: skip


async def test_upserts_deletes_and_dead_letters() -> None:
    store = MemoryStore()
    report = await apply_catalog_batch(
        store,
        [
            record(0, PHONE),
            record(1, DEAL),
            record(2, {"kind": "product", "product_id": "x2", "price": -1}),
            record(3, b"nope"),
            record(4, {"kind": "product", "product_id": "x3"}),
            record(5, {"kind": "product", "product_id": "x3", "op": "delete"}),
        ],
    )
    assert report.applied == 4
    assert [d.reason for d in report.dead_letters] == ["schema_violation", "schema_violation"]
    ctx = await load_context(store, "u", 1_800_000_000.0, CONFIG)
    assert ctx.catalog == {}  # nothing popular yet: the catalog is read for candidates only
    again = await apply_catalog_batch(store, [record(0, PHONE), record(1, DEAL)])
    assert (again.applied, again.skipped) == (0, 2)


async def test_catalog_entries_reach_the_read_model() -> None:
    from recstream.readmodel.load import load_items

    store = MemoryStore()
    await apply_catalog_batch(store, [record(0, PHONE), record(1, DEAL)])
    catalog, categories = await load_items(store, ["p:x1", "g:d1", "p:unknown"])
    assert catalog["p:x1"] == CatalogItem("p:x1", "product", category="phones", price=199.0)
    deal = catalog["g:d1"]
    assert deal.kind == "group"
    assert deal.target_size == 5
    assert not deal.group_open(1_800_000_000.0), "a full group cannot be joined"
    assert categories == {"p:x1": "phones"}


@pytest.mark.parametrize(
    ("status", "size", "closes", "open_"),
    [("open", 2, 2e9, True), ("closed", 2, 2e9, False), ("open", 2, 1.0, False)],
)
def test_group_open(status: str, size: int, closes: float, open_: bool) -> None:
    item = CatalogItem(
        "g:1", "group", target_size=5, current_size=size, closes_at=closes,
        status=status,  # type: ignore[arg-type]
    )  # fmt: skip
    assert item.group_open(1_800_000_000.0) is open_
