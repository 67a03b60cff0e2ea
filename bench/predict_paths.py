"""What LightGBM's predict is made of: ``python -m bench.predict_paths --model ARTIFACT``.

A learned ranker's artifact (``recstream train``'s ``ranker-*.json``) is loaded and three
ways of scoring the same matrix are timed in CPU seconds per call, at 1, 100, 252 and 300
rows (a request's candidates), one thread each:

- ``Booster.predict``, as the API calls it;
- the C function it wraps, ``LGBM_BoosterPredictForMat``, called directly with ctypes:
  what is left without the Python wrapper;
- treelite's interpreter (``treelite.gtil.predict``), a tree runtime that needs no
  compiler; treelite is not a dependency of the project, so pull it in for the run::

      uv run --with treelite python -m bench.predict_paths --model ARTIFACT

  (without it, that column is left out).

The matrices are random (each feature uniform on its own scale), the same for the three;
each way's scores are checked against ``Booster.predict``'s.
"""

from __future__ import annotations

import argparse
import ctypes
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
from lightgbm import basic

from bench.ranker_cost import cpu

ROWS = (1, 100, 252, 300)
Way = Callable[[np.ndarray], np.ndarray]
_LIB: Any = vars(basic)["_LIB"]  # LightGBM's loaded C library (not exported by name)
_FLOAT64 = 1  # lightgbm.basic._C_API_DTYPE_FLOAT64
_PREDICT_NORMAL = 0  # lightgbm.basic._C_API_PREDICT_NORMAL


def c_predict(booster: lightgbm.Booster) -> Way:
    """``LGBM_BoosterPredictForMat`` on a row-major float64 matrix, one thread."""
    parameters = ctypes.c_char_p(b"num_threads=1")

    def predict(matrix: np.ndarray) -> np.ndarray:
        rows, columns = matrix.shape
        out = np.empty(rows, dtype=np.float64)
        written = ctypes.c_int64(0)
        basic._safe_call(
            _LIB.LGBM_BoosterPredictForMat(
                booster._handle,
                matrix.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
                ctypes.c_int(_FLOAT64),
                ctypes.c_int32(rows),
                ctypes.c_int32(columns),
                ctypes.c_int(1),  # row-major
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),  # from the first iteration
                ctypes.c_int(-1),  # to the last
                parameters,
                ctypes.byref(written),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            )
        )
        return out

    return predict


def gtil_predict(booster: lightgbm.Booster) -> Way | None:
    try:
        import treelite  # type: ignore[import-not-found, unused-ignore]
        import treelite.gtil  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    model = treelite.frontend.from_lightgbm(booster)
    return lambda matrix: np.asarray(treelite.gtil.predict(model, matrix, nthread=1)).ravel()


def per_call(way: Way, matrix: np.ndarray, calls: int) -> float:
    """Microseconds of CPU per call of ``way`` on ``matrix``, over ``calls`` calls."""
    return cpu(lambda: [way(matrix) for _ in range(calls)])[1] / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a ranker-*.json artifact")
    parser.add_argument("--calls", type=int, default=2000, help="calls per way and size")
    args = parser.parse_args()
    artifact = json.loads(args.model.read_text())
    booster = lightgbm.Booster(model_str=artifact["model"])
    features = booster.num_feature()
    ways: dict[str, Way] = {
        "Booster.predict": lambda m: np.asarray(booster.predict(m, num_threads=1)),
        "C call": c_predict(booster),
    }
    gtil = gtil_predict(booster)
    if gtil is not None:
        ways["treelite GTIL"] = gtil
    print(f"{booster.num_trees()} trees, {features} features; µs of CPU per call")
    print("rows | " + " | ".join(ways))
    rng = np.random.default_rng(7)
    scales = rng.integers(1, 50, features)
    for rows in ROWS:
        matrix = np.ascontiguousarray(rng.random((rows, features)) * scales)
        expected = ways["Booster.predict"](matrix)
        for name, way in ways.items():
            if not np.allclose(way(matrix), expected, rtol=0, atol=1e-9):
                raise SystemExit(f"{name} scores differ from Booster.predict's")
        figures = [per_call(way, matrix, args.calls) for way in ways.values()]
        print(f"{rows} | " + " | ".join(f"{f:,.1f}" for f in figures))


if __name__ == "__main__":
    main()
