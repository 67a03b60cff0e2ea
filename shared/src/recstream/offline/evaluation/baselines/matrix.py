"""Item-based models over a row x item matrix: EASE and implicit ALS (pure, seeded).

Both are user-level methods (a "recommended for you" shelf) that also play the
next-item protocol: their training rows are the training sessions (``level="session"``,
one row per session) or the users (``level="user"``, one row per ``user_id``, all its
sessions), and they score any item history given at recommend time. The catalogue is
the training items, indexed in item-id order, so that a stable sort of the scores
breaks ties by item id. An empty history, or one of unknown items only, gives no
recommendation.

scipy and implicit are imported when a model is built, not with this module: they take
about a second to import, which every ``recstream`` command would pay otherwise.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, TypedDict

import numpy as np
from numpy.typing import NDArray

from recstream.offline.evaluation.baselines.base import LEVELS, Level
from recstream.offline.evaluation.protocol import EventSession

if TYPE_CHECKING:
    import scipy.sparse


def training_rows(sessions: Iterable[EventSession], level: Level) -> list[list[str]]:
    """The item events of each session, or of each user (in session order)."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}")
    if level == "session":
        return [items for s in sessions if (items := s.items)]
    by_user: dict[str, list[str]] = {}
    for session in sessions:
        by_user.setdefault(session.user_id, []).extend(session.items)
    return [items for items in by_user.values() if items]


class _Catalogue:
    """The training items in item-id order, and a row x item matrix over them."""

    def __init__(self, rows: list[list[str]]) -> None:
        self.items = sorted({item for row in rows for item in row})
        self.index = {item: n for n, item in enumerate(self.items)}

    def matrix(self, rows: list[list[str]], *, binary: bool) -> scipy.sparse.csr_matrix:
        import scipy.sparse

        indptr, indices, data = [0], list[int](), list[float]()
        for row in rows:
            counts = self.counts(row)
            indices.extend(counts)
            data.extend(1.0 if binary else float(n) for n in counts.values())
            indptr.append(len(indices))
        shape = (len(rows), len(self.items))
        return scipy.sparse.csr_matrix((np.array(data, np.float32), indices, indptr), shape)

    def counts(self, items: Iterable[str]) -> dict[int, int]:
        """Known item index -> events, in index order."""
        counts: dict[int, int] = {}
        for item in items:
            if (n := self.index.get(item)) is not None:
                counts[n] = counts.get(n, 0) + 1
        return dict(sorted(counts.items()))

    def top(self, scores: NDArray[np.floating], k: int, exclude: Collection[str]) -> list[str]:
        """The ``k`` best-scored items (ties by item id), none of ``exclude``."""
        top: list[str] = []
        for n in np.argsort(-scores, kind="stable"):
            if len(top) == k:
                break
            item = self.items[n]
            if item not in exclude:
                top.append(item)
        return top


class _DenseScorer:
    """What EASE and ALS share: a dense score per catalogue item from ``_scores``."""

    catalogue: _Catalogue

    def _scores(self, items: Sequence[str]) -> NDArray[np.floating] | None:
        raise NotImplementedError

    def scores(self, items: Sequence[str]) -> dict[str, float]:
        """Item -> score for every catalogue item ({} without a known item)."""
        scores = self._scores(items)
        if scores is None:
            return {}
        return dict(zip(self.catalogue.items, scores.tolist(), strict=True))

    def recommend(
        self, items: Sequence[str], k: int, *, exclude: Collection[str] = ()
    ) -> list[str]:
        scores = self._scores(items)
        return [] if scores is None else self.catalogue.top(scores, k, exclude)


class EASEOptions(TypedDict, total=False):
    regularization: float


class EASE(_DenseScorer):
    """EASE (Steck, WWW 2019, "Embarrassingly Shallow Autoencoders for Sparse Data").

    ``X`` is the binary row x item matrix; ``P = (X^T X + lambda I)^-1`` and the item-item
    weights are ``B = I - P diag(1 / diag(P))``: ``B_ij = -P_ij / P_jj`` and a zero
    diagonal (the paper's closed-form solution). The score of a history ``x`` (binary,
    its distinct known items) is ``x B``, every catalogue item ranked.

    ``regularization`` (lambda) = 500: the value of Steck's published notebook for
    ML-20M, also Cornac's default; session-rec ships no EASE, so there is no tuned value
    per dataset. (On yoochoose-100k, a validation day carved from the training period
    gives about the same HR@20 for lambda from 10 to 500: order-blind, EASE is weak at
    next-item prediction whatever lambda.)
    """

    name = "ease"
    level: Level = "user"

    def __init__(
        self,
        sessions: Iterable[EventSession],
        *,
        level: Level = "user",
        regularization: float = 500.0,
    ) -> None:
        if regularization <= 0:
            raise ValueError("regularization must be positive")
        rows = training_rows(sessions, level)
        self.level = level
        self.regularization = regularization
        self.catalogue = _Catalogue(rows)
        x = self.catalogue.matrix(rows, binary=True)
        gram = np.asarray((x.T @ x).toarray(), dtype=np.float64)
        gram[np.diag_indices_from(gram)] += regularization
        inverse = np.linalg.inv(gram)
        self.weights: NDArray[np.float64] = inverse / -np.diag(inverse)
        np.fill_diagonal(self.weights, 0.0)

    def _scores(self, items: Sequence[str]) -> NDArray[np.float64] | None:
        known = list(self.catalogue.counts(items))
        return self.weights[known].sum(axis=0) if known else None


class ALSOptions(TypedDict, total=False):
    factors: int
    regularization: float
    alpha: float
    iterations: int
    seed: int


class ALS(_DenseScorer):
    """Implicit-feedback ALS (Hu, Koren & Volinsky, ICDM 2008, "Collaborative Filtering
    for Implicit Feedback Datasets") with ``implicit``'s CPU
    ``AlternatingLeastSquares`` (conjugate gradient, Takacs et al. 2011).

    ``r_ui`` is the number of events of row ``u`` on item ``i``; ``implicit`` weighs a
    positive cell ``c_ui = alpha * r_ui`` (the paper: ``1 + alpha * r_ui``) and every
    other cell 1, with preference ``p_ui = [r_ui > 0]``. At recommend time the history's
    factor is recomputed from the item factors by an exact least-squares solve
    (``recalculate_user``, what ``recommend(..., recalculate_user=True)`` does), and an
    item's score is its factor's dot product with it.

    Parameters: ``factors=100``, ``regularization=0.01``, ``iterations=15``: ``implicit``'s
    defaults; ``alpha=40``: the value the paper found to work well; ``seed=0`` seeds the
    initial factors (``random_state``). None is tuned per dataset. One thread
    (``num_threads=1``, BLAS limited to 1 with threadpoolctl, as ``implicit`` asks), so
    the factors are the same in every run.
    """

    name = "als"
    level: Level = "user"

    def __init__(
        self,
        sessions: Iterable[EventSession],
        *,
        level: Level = "user",
        factors: int = 100,
        regularization: float = 0.01,
        alpha: float = 40.0,
        iterations: int = 15,
        seed: int = 0,
    ) -> None:
        from implicit.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        rows = training_rows(sessions, level)
        self.level = level
        self.catalogue = _Catalogue(rows)
        matrix = self.catalogue.matrix(rows, binary=False)
        with threadpool_limits(1, "blas"):
            self.model = AlternatingLeastSquares(
                factors=factors,
                regularization=regularization,
                alpha=alpha,
                iterations=iterations,
                use_gpu=False,
                num_threads=1,
                random_state=seed,
            )
            self.model.fit(matrix, show_progress=False)
            _ = self.model.YtY  # cached here, under the one-thread BLAS

    def _scores(self, items: Sequence[str]) -> NDArray[np.float32] | None:
        row = self.catalogue.matrix([list(items)], binary=False)
        if not row.nnz:
            return None
        factor = self.model.recalculate_user(0, row)
        scores: NDArray[np.float32] = self.model.item_factors @ factor
        return scores
