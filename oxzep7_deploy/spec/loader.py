"""Read a YAML spec into plain data, keeping the line and column of every key and value."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from oxzep7_deploy.spec.problems import Issue, Path, Positions

MAX_DEPTH = 64  # deeper than any spec needs; guards the recursion
MAX_NODES = 100_000  # guards against alias bombs ("billion laughs")

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"

_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", None)  # libyaml's parser, if PyYAML has it


class YamlError(Exception):
    """The text is not a YAML document we can read at all: one issue, with its line."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message)
        self.issue = issue


@dataclass
class Document:
    """A YAML document as plain data (dicts with string keys, lists, scalars) and where each node is.

    `issues` holds what was wrong but readable: duplicate keys (the first one is kept),
    non-scalar keys, unsupported tags.
    """

    data: Any
    positions: Positions
    issues: list[Issue] = field(default_factory=list)


def load_document(data: bytes) -> Document:
    """Parse one YAML document; raise `YamlError` if it is not YAML or is empty.

    libyaml parses when it is installed, for speed; a document it refuses is parsed again by
    PyYAML's own parser, so the error says the same whichever is installed.
    """
    text = _decode(data)
    lines = Lines(text)
    if _FAST_LOADER is not None:
        try:
            return _load(_FAST_LOADER, text, lines)
        except (yaml.YAMLError, RecursionError):
            pass
    try:
        return _load(yaml.SafeLoader, text, lines)
    except yaml.YAMLError as exc:
        raise YamlError(_yaml_issue(exc, lines)) from exc
    except RecursionError as exc:
        raise YamlError(Issue((), "the document is nested too deeply", line=1, col=1)) from exc


def _load(loader_class: Any, text: str, lines: Lines) -> Document:
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise YamlError(Issue((), "the spec is empty", line=1, col=1))
        return _Builder(loader, lines).build(root)
    finally:
        loader.dispose()


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        message = f"not UTF-8 text: byte {data[exc.start]:#04x} cannot be decoded"
        raise YamlError(Issue((), message, line=line, col=col)) from exc


class Lines:
    """Line and column (1-based) of a character index, counting lines as editors do.

    PyYAML's own marks also break lines at U+0085, U+2028 and U+2029, which editors show
    inside a line; positions are taken from the character index instead.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0] + [match.end() for match in re.finditer(r"\r\n|\r|\n", text)]

    def at(self, index: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, index)
        return line, index - self.starts[line - 1] + 1


def _yaml_issue(exc: yaml.YAMLError, lines: Lines) -> Issue:
    """An issue for a YAML error, at the line and column PyYAML points at."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        message = "invalid YAML: " + (exc.problem or exc.context or "cannot parse")
        if exc.context and exc.problem and exc.context.startswith("expected"):
            message = f"invalid YAML: {exc.context}, {exc.problem}"
        elif exc.context and exc.context_mark and exc.problem:
            message += f" ({exc.context} at line {lines.at(exc.context_mark.index)[0]})"
        if "'\\t'" in message:
            message += "; indent YAML with spaces, not tabs"
        alias = re.search(r"found undefined alias '(.*)'", message)
        if alias:  # `targets: *web` is an alias, not the host pattern "*web"
            message += f'; if it is text, put it in quotes: "*{alias[1]}"'
        line, col = lines.at(mark.index) if mark is not None else (1, 1)
        return Issue((), message, line=line, col=col)
    if isinstance(exc, yaml.reader.ReaderError):
        line, col = lines.at(exc.position)
        character = exc.character if isinstance(exc.character, int) else ord(exc.character)
        message = f"invalid YAML: the character U+{character:04X} is not allowed"
        return Issue((), message, line=line, col=col)
    return Issue((), f"invalid YAML: {exc}", line=1, col=1)


class _Builder:
    """Walks the composed node graph top-down, building data and recording positions by path."""

    def __init__(self, loader: Any, lines: Lines) -> None:
        self.loader = loader
        self.lines = lines
        self.positions = Positions()
        self.issues: list[Issue] = []
        self.nodes = 0

    def build(self, root: Node) -> Document:
        data = self.convert(root, (), ())
        return Document(data, self.positions, self.issues)

    def convert(self, node: Node, path: Path, active: tuple[Node, ...]) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise YamlError(self.at(node, path, f"the document has more than {MAX_NODES} nodes"))
        if len(active) > MAX_DEPTH or any(node is seen for seen in active):
            message = "an alias refers to itself" if node in active else "nested too deeply"
            raise YamlError(self.at(node, path, message))
        self.positions.values[path] = self.mark(node)
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        self.positions.collections.add(path)
        inside = (*active, node)
        if isinstance(node, SequenceNode):
            self.check_tag(node, _SEQ_TAG, path)
            return [self.convert(item, (*path, i), inside) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            self.check_tag(node, _MAP_TAG, path)
            return self.mapping(node, path, inside)
        raise YamlError(self.at(node, path, f"unexpected YAML node {type(node).__name__}"))

    def scalar(self, node: ScalarNode, path: Path) -> Any:
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            message = f"invalid YAML value: {exc.problem}"
            if node.tag.startswith("!") and not node.tag.startswith("!!"):
                message += f"; if it is text, put it in quotes: {self.quoted(node)}"
            self.issues.append(self.at(node, path, message))
            return str(node.value)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            # PyYAML's constructors trust the tag: `!!int app` fails inside int()
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            message = f"invalid YAML value: {node.value!r} is not a valid {tag}: remove the tag"
            self.issues.append(self.at(node, path, message))
            return str(node.value)
        if value is None and self.lines.text.startswith("&", node.start_mark.index):
            # `targets: &web` is an anchor named web on an empty value, not the text "&web"
            message = ("the value is only a YAML anchor, so it is empty; if it is text, "
                       f"put it in quotes: {self.quoted(node)}")
            self.issues.append(self.at(node, path, message))
        if value is None or isinstance(value, (str, bool, int, float)):
            return value
        return str(node.value)  # a date, !!binary…: keep the text as written

    def mapping(self, node: MappingNode, path: Path, active: tuple[Node, ...]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
            elif not isinstance(key_node, ScalarNode):
                message = "a key must be a plain word, not a list or mapping"
                self.issues.append(self.at(key_node, path, message))
            else:
                key = str(key_node.value)
                child = (*path, key)
                if key in result:
                    first = self.positions.keys[child][0]
                    message = f"duplicate key '{key}' (first at line {first}): remove one of them"
                    self.issues.append(self.at(key_node, child, message))
                    continue
                self.positions.keys[child] = self.mark(key_node)
                result[key] = self.convert(value_node, child, active)
        for source in merges:
            self.merge(result, source, path, active)
        return result

    def merge(self, result: dict[str, Any], node: Node, path: Path, active: tuple[Node, ...]) -> None:
        """Add what a `<<:` merge key brings in: keys written in the mapping win, then earlier sources."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, MappingNode):
                self.issues.append(self.at(source, path, "'<<' can merge only mappings"))
                continue
            mine, self.positions = self.positions, Positions()
            converted = self.convert(source, path, active)
            theirs, self.positions = self.positions, mine
            for key, value in converted.items():
                if key not in result:
                    result[key] = value
                    self.positions.adopt(theirs, (*path, key))

    def check_tag(self, node: Node, expected: str, path: Path) -> None:
        if node.tag != expected:
            self.issues.append(self.at(node, path, f"YAML tag {node.tag} is not supported here"))

    def quoted(self, node: Node) -> str:
        """The node as written, in double quotes: `"!web"` for `targets: !web`."""
        written = self.lines.text[node.start_mark.index : node.end_mark.index].strip()
        return '"' + written.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def mark(self, node: Node) -> tuple[int, int]:
        return self.lines.at(node.start_mark.index)

    def at(self, node: Node, path: Path, message: str) -> Issue:
        line, col = self.mark(node)
        return Issue(path, message, line=line, col=col)
