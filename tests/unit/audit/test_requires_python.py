"""Requires-Python judged against a target Python, and checked against `packaging` itself."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxzep7_deploy.audit.requires_python import InvalidSpecifier, Version, python_satisfies


@pytest.mark.parametrize(("spec", "python", "allowed"), [
    ("", "3.13.5", True),
    (">=3.8", "3.13.5", True),
    (">=3.8,<3.12", "3.13.5", False),
    (">=3.6, <3.12", "3.11.9", True),
    ("<3.13", "3.13.0", False),
    ("<3.13", "3.13.0rc1", False),  # pip judges X.Y.Z: a release candidate counts as 3.13.0
    ("<=3.13", "3.13.0", True),
    ("<=3.13", "3.13.5", False),
    ("==3.*", "3.13.5", True),
    ("==2.7.*", "3.13.5", False),
    (">=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*", "3.13.5", True),
    ("!=3.13.*", "3.13.5", False),
    ("~=3.8", "3.13.5", True),
    ("~=3.8.0", "3.13.5", False),
    ("~=3.13.1", "3.13.5", True),
    (">3.13", "3.13.0", False),
    (">3.13", "3.13.1", True),
    ("==3.13", "3.13.0", True),
    ("==3.13.5+local", "3.13.5", False),
    (">=3.14.0b1", "3.14.0", True),
    (">=3.14.0b1", "3.13.9", False),
    ("===3.13.5", "3.13.5", True),
    (" >= 3.9 ,", "3.13.5", True),
])
def test_requires_python(spec: str, python: str, allowed: bool) -> None:
    assert python_satisfies(spec, python) is allowed


@pytest.mark.parametrize("spec", [">=3.6.*", "python>=3", ">=", "=>3.8", "~=3", "<3.8+local",
                                  "==3.8.*.1", ">=3.8;"])
def test_what_is_not_a_specifier_is_refused(spec: str) -> None:
    with pytest.raises(InvalidSpecifier):
        python_satisfies(spec, "3.13.5")


def test_versions_order_as_pep_440_says() -> None:
    order = ["1.0.dev1", "1.0a1", "1.0a2.dev1", "1.0a2", "1.0b1", "1.0rc1", "1.0", "1.0.post1", "1.1"]
    keys = [Version.parse(v).key() for v in order]
    assert keys == sorted(keys)
    assert Version.parse("1.0").key() == Version.parse("1.0.0").key()


# ---- the same answers as packaging, on generated specifiers ----

packaging_spec = pytest.importorskip("packaging.specifiers")
packaging_version = pytest.importorskip("packaging.version")

releases = st.lists(st.integers(0, 14), min_size=1, max_size=3).map(lambda p: ".".join(map(str, p)))
suffixes = st.sampled_from(["", "", "", "a1", "b2", "rc1", ".post1", ".dev0"])
ops = st.sampled_from(["==", "!=", "<=", ">=", "<", ">", "~="])


@st.composite
def clauses(draw: st.DrawFn) -> str:
    op = draw(ops)
    release = draw(releases)
    if op in ("==", "!=") and draw(st.booleans()):
        return f"{op}{release}.*"
    if op == "~=" and "." not in release:
        release += ".0"
    return f"{op}{release}{draw(suffixes)}"


@settings(max_examples=400, deadline=None)
@given(spec=st.lists(clauses(), min_size=1, max_size=3).map(",".join),
       python=st.tuples(st.integers(2, 3), st.integers(0, 14), st.integers(0, 12)))
def test_agrees_with_packaging(spec: str, python: tuple[int, int, int]) -> None:
    version = ".".join(map(str, python))
    expected = packaging_spec.SpecifierSet(spec).contains(
        packaging_version.Version(version), prereleases=True)
    assert python_satisfies(spec, version) is expected, spec
