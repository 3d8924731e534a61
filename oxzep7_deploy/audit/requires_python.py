"""`Requires-Python` (PEP 440 version specifiers) judged against a target Python, stdlib only.

Evaluated as pip evaluates it before installing: the Python's version is its `X.Y.Z` (pip
passes `sys.version_info[:3]`, so 3.13.0rc1 counts as 3.13.0), matched against every clause
of the specifier set. The semantics follow PEP 440 and the `packaging` library (the unit tests
compare the two on generated specifiers); a specifier that does not parse raises
`InvalidSpecifier`, which pip answers by ignoring it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION = re.compile(
    r"""^\s*v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?P<pre>[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>[0-9]+)?)?
    (?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?))?
    (?P<dev>[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    \s*$""",
    re.VERBOSE | re.IGNORECASE,
)
_CLAUSE = re.compile(r"^\s*(?P<op>~=|===|==|!=|<=|>=|<|>)\s*(?P<version>[^\s]*)\s*$")
_PRE_ORDER = {"a": 0, "b": 1, "rc": 2}
_PRE_NAMES = {"alpha": "a", "a": "a", "beta": "b", "b": "b", "c": "rc", "pre": "rc",
              "preview": "rc", "rc": "rc"}
_INF = float("inf")


class InvalidSpecifier(ValueError):
    """A Requires-Python value that is not a PEP 440 specifier set."""


@dataclass(frozen=True)
class Version:
    """A PEP 440 version, comparable as `packaging.version.Version` compares."""

    epoch: int
    release: tuple[int, ...]
    pre: tuple[str, int] | None
    post: int | None
    dev: int | None
    local: str | None

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _VERSION.match(text)
        if not m:
            raise InvalidSpecifier(f"not a version: {text!r}")
        pre = None
        if m.group("pre_l"):
            pre = (_PRE_NAMES[m.group("pre_l").lower()], int(m.group("pre_n") or 0))
        post = None
        if m.group("post_n1") or m.group("post_l"):
            post = int(m.group("post_n1") or m.group("post_n2") or 0)
        dev = int(m.group("dev_n") or 0) if m.group("dev_l") else None
        return cls(int(m.group("epoch") or 0), tuple(int(p) for p in m.group("release").split(".")),
                   pre, post, dev, (m.group("local") or "").lower() or None)

    @property
    def is_prerelease(self) -> bool:
        return self.pre is not None or self.dev is not None

    def key(self) -> tuple[object, ...]:
        release = list(self.release)
        while len(release) > 1 and release[-1] == 0:
            release.pop()
        if self.pre is None and self.post is None and self.dev is not None:
            pre: tuple[float, float] = (-_INF, 0)  # 1.0.dev0 sorts before 1.0a0
        elif self.pre is None:
            pre = (_INF, 0)
        else:
            pre = (_PRE_ORDER[self.pre[0]], self.pre[1])
        post = -_INF if self.post is None else self.post
        dev = _INF if self.dev is None else self.dev
        return (self.epoch, tuple(release), pre, post, dev)

    def public(self) -> Version:
        return Version(self.epoch, self.release, self.pre, self.post, self.dev, None)


def _clauses(spec: str) -> list[tuple[str, str]]:
    out = []
    for part in spec.split(","):
        if not part.strip():
            continue
        m = _CLAUSE.match(part)
        if not m or not m.group("version"):
            raise InvalidSpecifier(f"not a version specifier: {part.strip()!r}")
        out.append((m.group("op"), m.group("version")))
    return out


def _check(op: str, text: str) -> None:
    """Refuse what PEP 440 refuses: `.*` outside ==/!=, local versions in ordered comparisons."""
    if op == "===":
        return
    wildcard = text.endswith(".*")
    base = text[:-2] if wildcard else text
    if wildcard and (op not in ("==", "!=") or not re.fullmatch(r"v?(\d+!)?\d+(\.\d+)*", base)):
        raise InvalidSpecifier(f"a prefix match is only for == and != on a release: {op}{text}")
    version = Version.parse(base)
    if op not in ("==", "!=") and version.local:
        raise InvalidSpecifier(f"a local version is only for == and !=: {op}{text}")
    if op == "~=" and len(version.release) < 2:
        raise InvalidSpecifier(f"~= needs at least two release numbers: {op}{text}")


def _prefix_match(candidate: Version, prefix: str) -> bool:
    wanted = Version.parse(prefix)
    if wanted.epoch != candidate.epoch:
        return False
    n = len(wanted.release)
    padded = candidate.release + (0,) * max(0, n - len(candidate.release))
    return padded[:n] == wanted.release


def _matches(op: str, text: str, candidate: Version) -> bool:
    if op == "===":
        return text.strip().lower() == ".".join(str(p) for p in candidate.release)
    if text.endswith(".*"):
        hit = _prefix_match(candidate.public(), text[:-2])
        return hit if op == "==" else not hit
    spec = Version.parse(text)
    cand = candidate.public()  # a Python's version never has a local part
    if op in ("==", "!="):
        equal = cand.key() == spec.key() and spec.local is None
        return equal if op == "==" else not equal
    if op == "~=":
        stem = ".".join(str(p) for p in spec.release[:-1])
        if spec.epoch:
            stem = f"{spec.epoch}!{stem}"
        return cand.key() >= spec.key() and _prefix_match(cand, stem)
    if op == "<=":
        return cand.key() <= spec.key()
    if op == ">=":
        return cand.key() >= spec.key()
    if op == "<":
        same_base = cand.release == spec.release and cand.epoch == spec.epoch
        return cand.key() < spec.key() and not (
            not spec.is_prerelease and cand.is_prerelease and same_base)
    # ">"
    same_base = cand.release == spec.release and cand.epoch == spec.epoch
    return cand.key() > spec.key() and not (
        spec.post is None and cand.post is not None and same_base)


def validate(spec: str) -> None:
    """Raise `InvalidSpecifier` unless `spec` is a PEP 440 specifier set."""
    for op, text in _clauses(spec):
        _check(op, text)


def python_satisfies(requires_python: str, python_version: str) -> bool:
    """Whether a Python of `python_version` (e.g. "3.13.5") may install a distribution that
    declares `requires_python` (e.g. ">=3.8,<3.12"), as pip decides it."""
    m = re.match(r"^\s*(\d+(?:\.\d+)*)", python_version)
    if not m:
        raise ValueError(f"not a Python version: {python_version!r}")
    release = tuple(int(p) for p in m.group(1).split("."))[:3]
    candidate = Version(0, release, None, None, None, None)
    validate(requires_python)
    return all(_matches(op, text, candidate) for op, text in _clauses(requires_python))
