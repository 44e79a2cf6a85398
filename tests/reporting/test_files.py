"""The CSV writer of every output table writes exactly what pandas' ``to_csv`` writes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.reporting.files import write_csv

FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1e16, 1e-5, 2017.25, 1 / 3])
TEXT = st.text(alphabet=st.sampled_from(list("ab ,\"'\n\r;é北京")), max_size=6) | st.just("St. Louis")
OBJECTS = st.one_of(TEXT, st.none(), st.integers(-10**6, 10**6), st.booleans(), FLOATS,
                    FLOATS.map(np.float64), st.floats(width=32).map(np.float32), st.integers(-100, 100).map(np.int64))


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """Tables with the column types the product writes (and some it does not), NaN and NA included."""
    n = draw(st.integers(0, 6))
    makers = {
        "int": lambda: pd.Series(draw(st.lists(st.integers(-2**62, 2**62), min_size=n, max_size=n)), dtype=np.int64),
        "float": lambda: pd.Series(draw(st.lists(FLOATS, min_size=n, max_size=n)), dtype=float),
        "bool": lambda: pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool),
        "Int64": lambda: pd.Series(draw(st.lists(st.none() | st.integers(-99, 99), min_size=n, max_size=n)),
                                   dtype="Int64"),
        "boolean": lambda: pd.Series(draw(st.lists(st.none() | st.booleans(), min_size=n, max_size=n)),
                                     dtype="boolean"),
        "string": lambda: pd.Series(draw(st.lists(st.none() | TEXT, min_size=n, max_size=n)), dtype="string"),
        "object": lambda: pd.Series(draw(st.lists(OBJECTS, min_size=n, max_size=n)), dtype=object),
        "category": lambda: pd.Series(draw(st.lists(TEXT, min_size=n, max_size=n)), dtype="category"),
    }
    kinds = draw(st.lists(st.sampled_from(sorted(makers)), min_size=1, max_size=5))
    names = draw(st.lists(TEXT, min_size=len(kinds), max_size=len(kinds)))
    return pd.DataFrame({name: makers[kind]() for name, kind in zip(names, kinds, strict=False)})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=frames())
def test_write_csv_writes_what_pandas_writes(frame: pd.DataFrame, tmp_path: Path):
    write_csv(tmp_path / "t.csv", frame)
    assert (tmp_path / "t.csv").read_bytes().decode("utf-8") == frame.to_csv(index=False, lineterminator="\n")


def test_a_sweep_sized_table_round_trips(tmp_path: Path):
    """A metrics-like table: integers, floats in full precision, names, booleans; read back unchanged."""
    rng = np.random.default_rng(0)
    n = 5000
    frame = pd.DataFrame({"point": np.repeat(np.arange(50), 100), "year": 2017 + np.tile(np.arange(100), 50) / 4,
                          "hhi": rng.random(n), "leader": rng.choice(["Beijing", "St. Louis", "a,b"], n),
                          "lead_change": rng.random(n) < 0.1, "firms": pd.array(rng.integers(0, 9, n), dtype="Int64")})
    frame.loc[3, "firms"] = pd.NA
    write_csv(tmp_path / "m.csv", frame)
    back = pd.read_csv(tmp_path / "m.csv", dtype={"firms": "Int64"})
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert math.isnan(pd.read_csv(tmp_path / "m.csv")["firms"][3])
