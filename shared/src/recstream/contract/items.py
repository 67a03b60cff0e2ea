"""Item keys: how a product or a group deal is named inside recstream (``p:<id>``, ``g:<id>``).

Every statistic, state and read model names items by these keys; the API turns
them back into ``{"kind", "id"}`` at its edge. This module is the one place
that builds or reads them.
"""

from __future__ import annotations

from typing import Literal

ItemKindName = Literal["product", "group"]
PRODUCT_PREFIX = "p:"
GROUP_PREFIX = "g:"


def product_key(product_id: str) -> str:
    return PRODUCT_PREFIX + product_id


def group_key(group_id: str) -> str:
    return GROUP_PREFIX + group_id


def item_key(product_id: str | None, group_id: str | None) -> str | None:
    """The key of a product or a group deal (the product when both are given); None for none."""
    if product_id is not None:
        return product_key(product_id)
    if group_id is not None:
        return group_key(group_id)
    return None


def is_group(key: str) -> bool:
    return key.startswith(GROUP_PREFIX)


def is_product(key: str) -> bool:
    return key.startswith(PRODUCT_PREFIX)


def split_key(key: str) -> tuple[ItemKindName, str]:
    """``"g:g-5"`` -> ``("group", "g-5")``; a key without a known prefix is a product's."""
    if is_group(key):
        return "group", key[len(GROUP_PREFIX) :]
    return "product", key.removeprefix(PRODUCT_PREFIX)
