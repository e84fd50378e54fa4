"""Safe YAML reading that keeps line/column marks and refuses duplicate keys.

We compose the node tree with PyYAML's safe loader (no Python object tags can be built) and turn
it into plain dicts, lists and scalars ourselves, recording where each value and each key sits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import WARNING, Problems

Path = tuple[Any, ...]

# YAML 1.1 turns these into booleans; a rule author nearly always meant the word.
_YAML11_BOOL_WORDS = {"yes", "no", "on", "off", "y", "n"}
_STD_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}


@dataclass
class Document:
    """Plain data from a YAML file, with the mark of every value and key (1-based line, col)."""

    data: Any
    marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    bool_words: set[Path] = field(default_factory=set)

    def mark(self, path: Path) -> tuple[int, int]:
        """The mark of the value at ``path``, or of its nearest ancestor."""
        while path:
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return self.marks.get((), (1, 1))

    def key_mark(self, path: Path) -> tuple[int, int]:
        return self.key_marks.get(path) or self.mark(path)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def read_yaml(text: str, problems: Problems) -> Document | None:
    """Parse ``text``; on a syntax error record it in ``problems`` and return None."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = (mark.line + 1, mark.column + 1) if mark else None
        problems.add(
            "E101",
            "yaml-syntax",
            f"{exc.problem or 'invalid YAML'}" + (f" ({exc.context})" if exc.context else ""),
            where,
            hint="check indentation and quoting near this place",
        )
        return None
    except yaml.YAMLError as exc:
        problems.add("E101", "yaml-syntax", str(exc).splitlines()[0], None)
        return None
    finally:
        loader.dispose()
    doc = Document(data=None)
    if root is None:
        return doc
    anchors_seen: set[int] = set()
    doc.data = _build(root, (), doc, loader, problems, anchors_seen)
    return doc


def _build(
    node: yaml.Node,
    path: Path,
    doc: Document,
    loader: yaml.SafeLoader,
    problems: Problems,
    seen: set[int],
) -> Any:
    doc.marks[path] = _mark(node)
    if id(node) in seen:
        problems.add(
            "E102",
            "yaml-alias",
            "anchors and aliases are not allowed in a rule set",
            _mark(node),
            hint="write the value out in full so each item can be read on its own",
        )
        return None
    seen.add(id(node))
    if node.tag not in _STD_TAGS:
        problems.add(
            "E103",
            "yaml-tag",
            f"tag '{node.tag}' is not allowed",
            _mark(node),
            hint="remove the tag; rule sets hold plain values only",
        )
        return None
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                problems.add("E104", "yaml-key", "mapping keys must be plain words", _mark(key_node))
                continue
            key = loader.construct_object(key_node)
            if key_node.tag == "tag:yaml.org,2002:bool" and key_node.style is None:
                key = key_node.value  # a key like `no:` means the word, not a boolean
            if key in result:
                first = doc.key_marks.get(path + (key,))
                problems.add(
                    "E105",
                    "duplicate-key",
                    f"key '{key}' appears twice"
                    + (f" (first at line {first[0]})" if first else ""),
                    _mark(key_node),
                    hint="remove or rename one of them; YAML would silently keep only the last",
                )
                continue
            doc.key_marks[path + (key,)] = _mark(key_node)
            result[key] = _build(value_node, path + (key,), doc, loader, problems, seen)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, path + (i,), doc, loader, problems, seen)
            for i, item in enumerate(node.value)
        ]
    value = loader.construct_object(node)
    if (
        node.tag == "tag:yaml.org,2002:bool"
        and node.style is None
        and node.value.lower() in _YAML11_BOOL_WORDS
    ):
        doc.bool_words.add(path)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def bool_word_warning(doc: Document, path: Path, problems: Problems, what: str) -> None:
    """Warn when an unquoted yes/no/on/off was read as a boolean where a string was meant."""
    if path in doc.bool_words:
        problems.add(
            "W101",
            "yaml-bool-word",
            f"unquoted word in {what} is read by YAML as a boolean",
            doc.mark(path),
            hint='quote it, e.g. "no", if you meant the word',
            level=WARNING,
        )
