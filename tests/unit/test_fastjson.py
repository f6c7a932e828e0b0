"""workers.events writes the JSON the standard library wrote, whatever the value: the same text,
but for the notation of some floats (``6.1e-05`` is ``0.000061``), which read back the same."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from workers.events import dumps


def _values(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
        max_leaves=30,
    )


no_floats = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text()


def _stdlib(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


@given(_values(no_floats))
def test_the_text_is_the_standard_librarys(value: Any) -> None:
    assert dumps(value) == _stdlib(value)


@given(_values(no_floats | st.floats(allow_nan=False, allow_infinity=False)))
def test_floats_read_back_the_same(value: Any) -> None:
    assert json.loads(dumps(value)) == value


def test_what_orjson_refuses_is_written_as_before() -> None:
    for value in ({"n": 2**80}, {"text": "\ud800 lone"}, {1: "int key"}, [-(2**70)]):
        assert dumps(value) == _stdlib(value)
