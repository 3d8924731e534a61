"""Durations: the spec's forms to seconds and back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxzep7_deploy.spec.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("2h0m5s", 7205), ("90m", 5400),
     ("0s", 0), (0, 0), (300, 300), (12.0, 12)],
)
def test_parse_duration(value: object, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value", ["", "5", "5 m", "1m1h", "1d", "-5s", "5M", "1.5h", -1, 1.5, True, None, [], "٣s"]
)
def test_parse_duration_refuses(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (45, "45s"), (300, "5m"), (5400, "1h30m"),
                                               (3601, "1h1s")])
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=10**7))
def test_format_then_parse_is_identity(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
