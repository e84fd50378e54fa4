"""Safe YAML reading that keeps line/column marks and refuses duplicate keys.

We compose the node tree with PyYAML's safe loader (no Python object tags can be built) and turn
it into plain dicts, lists and scalars ourselves, recording where each value and each key sits.
Aliases are replaced by marker nodes while composing, so every alias is reported where it is
written (PyYAML would otherwise hand us the anchored node again, with the anchor's mark).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

import yaml
from yaml.scanner import Scanner

from ..errors import WARNING, Problems
from .limits import Limits

Path = tuple[Any, ...]

# YAML 1.1 turns these into booleans; a rule author nearly always meant the word.
_YAML11_BOOL_WORDS = {"yes", "no", "on", "off", "y", "n"}
_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
_STD_TAGS = _SCALAR_TAGS | {_TAG + "map", _TAG + "seq"}
_MERGE_TAG = _TAG + "merge"
_ALIAS_TAG = "!iopscreen/alias"  # our marker for an alias; '!' tags cannot be written as '!!'
# A line inside a runaway quoted string that looks like YAML structure (a key or a list item).
_STRUCTURE_LINE = re.compile(r"^\s*(?:- |[A-Za-z_][\w-]*:(?:\s|$))")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# Control characters have no place in rule-set text (a label is printed to a terminal, where
# ESC starts a control sequence); tab and line breaks are fine. YAML itself refuses them raw
# in the file but builds them from escapes such as "\x1b" or "\0".
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x84\x86-\x9f]")


@dataclass(frozen=True)
class Scalar:
    """Where a scalar's text sits in the file: its style and character span."""

    style: str | None  # None (plain), "'", '"', "|" or ">"
    start: int
    end: int
    raw: str  # the scalar's value as YAML read it, before typing (e.g. "1.2")


@dataclass
class Document:
    """Plain data from a YAML file, with the mark of every value and key (1-based line, col)."""

    data: Any
    text: str = ""
    marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    bool_words: set[Path] = field(default_factory=set)
    scalars: dict[Path, Scalar] = field(default_factory=dict)
    # values already reported (alias, tag) and read as None; checks should not report them again
    rejected: set[Path] = field(default_factory=set)

    def mark(self, path: Path) -> tuple[int, int]:
        """The mark of the value at ``path``, or of its nearest ancestor."""
        while path:
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return self.marks.get((), (1, 1))

    def key_mark(self, path: Path) -> tuple[int, int]:
        return self.key_marks.get(path) or self.mark(path)

    def position(self, path: Path, value: str, offset: int) -> tuple[int, int]:
        """The (line, col) in the file of character ``offset`` of the string ``value`` at ``path``.

        Works for every scalar style: quotes, '' and backslash escapes, folded and literal
        blocks. Line folding only ever changes whitespace, so the n-th non-blank character of
        the value is the n-th non-blank character of the source, once escapes are decoded.
        """
        scalar = self.scalars.get(path)
        if scalar is None or not 0 <= offset < len(value):
            return self.mark(path)
        wanted = sum(1 for ch in value[:offset] if not ch.isspace())
        for index in _nonblank_units(self.text, scalar):
            if wanted == 0:
                return _line_col(self.text, index)
            wanted -= 1
        return self.mark(path)


def _line_col(text: str, index: int) -> tuple[int, int]:
    line_start = max(text.rfind("\n", 0, index) + 1, text.rfind("\r", 0, index) + 1)
    return (len(_LINE_BREAK.findall(text, 0, index)) + 1, index - line_start + 1)


def _nonblank_units(text: str, scalar: Scalar) -> Iterator[int]:
    """Source index of each non-blank character of a scalar's value, escapes decoded."""
    pos = _skip_properties(text, scalar.start)
    end = scalar.end
    if scalar.style in ("|", ">"):
        # the content starts on the line after the indicator (which may carry a comment)
        breaks = _LINE_BREAK.search(text, pos, end)
        pos = breaks.end() if breaks else end
    elif scalar.style in ("'", '"'):
        pos, end = pos + 1, end - 1  # inside the quotes
    while pos < end:
        ch = text[pos]
        if scalar.style == "'" and text.startswith("''", pos):
            yield pos
            pos += 2
            continue
        if scalar.style == '"' and ch == "\\" and pos + 1 < end:
            code = text[pos + 1]
            width = Scanner.ESCAPE_CODES.get(code, 0)
            if width:
                decoded = chr(int(text[pos + 2:pos + 2 + width] or "0", 16))
            else:
                decoded = Scanner.ESCAPE_REPLACEMENTS.get(code, "")  # "" for an escaped break
            if decoded and not decoded.isspace():
                yield pos
            pos += 2 + width
            continue
        if not ch.isspace():
            yield pos
        pos += 1


def _skip_properties(text: str, pos: int) -> int:
    """Skip a node's tag and anchor (``!!str &a``) to where its value starts."""
    while pos < len(text) and text[pos] in "!&":
        while pos < len(text) and not text[pos].isspace():
            pos += 1
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return pos


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _TooBig(yaml.YAMLError):
    """A limit was reached while composing: stop at once and report where."""

    def __init__(self, code: str, name: str, message: str, mark: yaml.Mark, hint: str):
        super().__init__(message)
        self.code, self.name, self.message, self.hint = code, name, message, hint
        self.where = (mark.line + 1, mark.column + 1)


class _Composer(yaml.composer.Composer):
    """Composing aliases as marker nodes, noting explicitly tagged nodes, and stopping at
    the depth and node limits (before Python's recursion limit or the memory runs out)."""

    explicit: set[int]  # ids of nodes that carry a tag written in the file
    yaml_constructors: dict[Any, Any]  # from SafeConstructor, mixed in beside
    limits: Limits
    depth: int
    nodes: int

    if TYPE_CHECKING:  # from the parser mixed in beside (Python's or libyaml's)
        def peek_event(self) -> Any: ...

        def get_event(self) -> Any: ...

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        self.nodes += 1
        if self.nodes > self.limits.nodes:
            raise _TooBig("E108", "too-many-nodes", f"the rule set has more than "
                          f"{self.limits.nodes:,} YAML values", event.start_mark,
                          self.limits.raise_hint("nodes"))
        if isinstance(event, yaml.AliasEvent):
            self.get_event()
            return yaml.ScalarNode(_ALIAS_TAG, event.anchor, event.start_mark, event.end_mark)
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if self.depth >= self.limits.depth:
                raise _TooBig("E107", "too-deep", f"the YAML is nested more than "
                              f"{self.limits.depth} levels deep here", event.start_mark,
                              "a rule set needs about 8 levels; "
                              + self.limits.raise_hint("depth"))
            self.depth += 1
            try:
                node: yaml.Node = super().compose_node(parent, index)
            finally:
                self.depth -= 1
        else:
            node = super().compose_node(parent, index)
        if getattr(event, "tag", None) not in (None, "!"):
            self.explicit.add(id(node))
        if isinstance(node, yaml.ScalarNode) and node.style == "":
            node.style = None  # libyaml's plain style, as the pure-Python parser has it
        return node


class _Loader(_Composer, yaml.SafeLoader):
    """The pure-Python safe loader: its error messages are the ones we report."""

    def __init__(self, text: str, limits: Limits):
        super().__init__(text)
        self.explicit = set()
        self.limits, self.depth, self.nodes = limits, 0, 0


def _c_parser() -> Any:
    try:
        from yaml._yaml import CParser
    except ImportError:  # PyYAML built without libyaml
        return None
    return CParser


_CParser: Any = _c_parser()


class _FastLoader(_Composer, _CParser or yaml.SafeLoader,  # type: ignore[misc]
                  yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """libyaml's parser (C) under our composer: the same nodes, several times faster. Only
    used on text the pure-Python reader accepts as printable; any error is re-read by
    :class:`_Loader` for its message."""

    def __init__(self, text: str, limits: Limits):
        _CParser.__init__(self, text)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self.explicit = set()
        self.limits, self.depth, self.nodes = limits, 0, 0


# Past this many values before a syntax error, the error is reported as libyaml words it: the
# pure-Python parser, whose messages we prefer, takes about 4 s per 100,000 values.
PURE_REREAD_NODES = 20_000


def read_yaml(text: str, problems: Problems, limits: Limits | None = None) -> Document | None:
    """Parse ``text`` within ``limits`` (default: the defaults); on a syntax error, a character
    YAML refuses, or a limit reached, record it in ``problems`` (with its place) and return
    None. Raises nothing for any text."""
    limits = limits or Limits()
    bad = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if bad is not None:  # PyYAML's reader would refuse the whole text without a line
        char = bad.group()
        what = "a control character" if _CONTROL.match(char) else "a character YAML refuses"
        problems.add("E106", "yaml-character", f"the file holds U+{ord(char):04X}, {what}",
                     _line_col(text, bad.start()),
                     hint="remove it; a rule set holds printable text, tabs and line breaks only")
        return None
    if _CParser is not None:
        fast = _FastLoader(text, limits)
        try:
            root = fast.get_single_node()
        except _TooBig as exc:
            problems.add(exc.code, exc.name, exc.message, exc.where, hint=exc.hint)
            return None
        except yaml.MarkedYAMLError as exc:
            if fast.nodes > PURE_REREAD_NODES:
                _syntax_error(text, exc, problems)  # libyaml's own words, at its place
                return None
            # else read again below, for the usual message
        except yaml.YAMLError:
            pass  # read again below, for the usual message
        else:
            return _document(text, fast, root, problems)
        finally:
            fast.dispose()
    loader = _Loader(text, limits)
    try:
        root = loader.get_single_node()
    except _TooBig as exc:
        problems.add(exc.code, exc.name, exc.message, exc.where, hint=exc.hint)
        return None
    except yaml.MarkedYAMLError as exc:
        _syntax_error(text, exc, problems)
        return None
    except yaml.YAMLError as exc:  # pragma: no cover - every reader/scanner error is marked
        problems.add("E101", "yaml-syntax", _one_line(str(exc)), (1, 1),
                     hint="check indentation and quoting")
        return None
    finally:
        loader.dispose()
    return _document(text, loader, root, problems)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _document(text: str, loader: _Composer, root: yaml.Node | None,
              problems: Problems) -> Document:
    doc = Document(data=None, text=text)
    if root is not None:
        doc.data = _Builder(doc, loader, problems).build(root, ())
    return doc


def _syntax_error(text: str, exc: yaml.MarkedYAMLError, problems: Problems) -> None:
    """Report a YAML syntax error where the mistake most likely is, not where PyYAML gave up."""
    problem = _one_line(exc.problem or "invalid YAML")
    mark, context = exc.problem_mark or exc.context_mark, _one_line(exc.context or "")
    message = problem + (f" ({context})" if context else "")
    hint = "check indentation and quoting near this place"
    runaway = _runaway_quote(text, mark)
    if runaway is not None:
        where = (runaway.line + 1, runaway.column + 1)
        message = (f"this quoted text runs on over the following lines; YAML then fails at "
                   f"line {mark.line + 1}: {problem}")
        hint = f"is the closing quote missing (line {where[0]})?"
    elif (
        exc.context_mark is not None and mark is not None
        and (context.startswith("while parsing a flow") or "quoted scalar" in context)
        and exc.context_mark.line != mark.line
    ):
        # an unclosed bracket or quote: the opening one is what needs fixing
        opener = text[exc.context_mark.index] if exc.context_mark.index < len(text) else ""
        closer = {"{": "}", "[": "]"}.get(opener, opener)
        where = (exc.context_mark.line + 1, exc.context_mark.column + 1)
        message = f"{problem} at line {mark.line + 1} ({context} that starts here)"
        hint = f"is the closing '{closer}' missing?" if closer else hint
    else:
        where = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problems.add("E101", "yaml-syntax", message, where, hint=hint)


def _runaway_quote(text: str, error: yaml.Mark | None) -> yaml.Mark | None:
    """The start of a quoted string, before ``error``, that swallowed lines of YAML structure.

    A missing closing quote makes YAML read on until the next quote character, often many lines
    later, and the error it reports is far from the mistake. A swallowed line looks like a key
    or a list item and is indented no deeper than the line the quote opened on (the way a
    wrapped quoted text would be).
    """
    if error is None:
        return None
    try:
        for token in yaml.scan(text, Loader=yaml.CSafeLoader if _CParser else yaml.SafeLoader):
            if token.start_mark.index >= error.index:
                break
            if isinstance(token, yaml.ScalarToken) and token.style in ("'", '"'):
                start = token.start_mark
                first = text[start.index - start.column:start.index]
                indent = len(first) - len(first.lstrip())
                inner = text[start.index:token.end_mark.index].splitlines()[1:]
                if any(_STRUCTURE_LINE.match(line) and len(line) - len(line.lstrip()) <= indent
                       for line in inner):
                    return start  # type: ignore[no-any-return]
    except yaml.YAMLError:
        pass
    return None


class _BadScalar(Exception):
    pass


@dataclass
class _Builder:
    doc: Document
    loader: _Composer
    problems: Problems

    def reject(self, code: str, name: str, message: str, node: yaml.Node, hint: str,
               path: Path | None = None) -> None:
        self.problems.add(code, name, message, _mark(node), hint=hint)
        if path is not None:
            self.doc.rejected.add(path)

    def alias(self, node: yaml.Node, path: Path | None, merge: bool = False) -> None:
        self.reject(
            "E102", "yaml-alias",
            "merge keys (<<) and aliases are not allowed in a rule set" if merge
            else "anchors and aliases are not allowed in a rule set",
            node, "write the keys out in full instead of merging them in" if merge
            else "write the value out in full so each item can be read on its own", path)

    def build(self, node: yaml.Node, path: Path) -> Any:
        doc = self.doc
        doc.marks[path] = _mark(node)
        if node.tag == _ALIAS_TAG:
            self.alias(node, path)
            return None
        if not self.tag_fits(node, path):
            return None
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        try:
            value = self.scalar(node)
        except _BadScalar:
            doc.rejected.add(path)
            return None
        doc.scalars[path] = Scalar(node.style, node.start_mark.index, node.end_mark.index,
                                   node.value)
        if isinstance(value, str) and (bad := _CONTROL.search(value)) is not None:
            self.control(doc.position(path, value, bad.start()), bad.group())
            doc.rejected.add(path)
            return None
        if (
            node.tag == _TAG + "bool"
            and node.style is None
            and node.value.lower() in _YAML11_BOOL_WORDS
        ):
            doc.bool_words.add(path)
        if isinstance(value, (dt.date, dt.datetime)):
            return value.isoformat()
        return value

    def control(self, where: tuple[int, int], char: str) -> None:
        self.problems.add("E106", "yaml-character",
                          f"the text holds the control character U+{ord(char):04X}", where,
                          hint="remove the escape; rule-set text is printed to terminals, "
                               "where control characters do harm")

    def tag_fits(self, node: yaml.Node, path: Path | None) -> bool:
        """Report a tag that is not a plain YAML type, or one that does not fit the node."""
        kind = {yaml.MappingNode: _TAG + "map", yaml.SequenceNode: _TAG + "seq"}.get(type(node))
        if node.tag in (_SCALAR_TAGS if kind is None else {kind}):
            return True
        shown = node.tag.replace(_TAG, "!!")
        self.reject("E103", "yaml-tag", f"tag '{shown}' is not allowed"
                    + ("" if node.tag not in _STD_TAGS else " here"),
                    node, "remove the tag; rule sets hold plain values only", path)
        return False

    def scalar(self, node: yaml.ScalarNode) -> Any:
        """The typed value of a scalar; raises _BadScalar when an explicit tag does not fit."""
        construct = self.loader.yaml_constructors[node.tag]
        try:
            return construct(self.loader, node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError, AttributeError):
            # e.g. int('zero'); the timestamp constructor fails with AttributeError on non-dates
            if id(node) in self.loader.explicit:
                self.reject("E103", "yaml-tag",
                            f"'{node.value}' is not a valid !!{node.tag.rsplit(':', 1)[-1]}",
                            node, "remove the tag, or write a value of that type")
                raise _BadScalar from None
            # only a date-like word (2026-13-01) fails without a tag: keep the text, so the
            # field that wanted a date reports it in its own words
            return node.value

    def mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        doc = self.doc
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self.merge(key_node, value_node, path)
                continue
            if key_node.tag == _ALIAS_TAG:
                self.alias(key_node, None)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.add("E104", "yaml-key", "mapping keys must be plain words",
                                  _mark(key_node), hint="write a plain word before the colon")
                continue
            try:
                if not self.tag_fits(key_node, None):
                    raise _BadScalar
                key = self.scalar(key_node)
            except _BadScalar:
                # keep the key as written, so checks do not also report it as missing
                doc.marks[path + (key_node.value,)] = _mark(key_node)
                doc.rejected.add(path + (key_node.value,))
                result.setdefault(key_node.value, None)
                continue
            if key_node.tag == _TAG + "bool" and key_node.style is None:
                key = key_node.value  # a key like `no:` means the word, not a boolean
            if isinstance(key, str) and (bad := _CONTROL.search(key)) is not None:
                self.control(_mark(key_node), bad.group())
                continue
            if isinstance(key, (dt.date, dt.datetime)):
                key = key.isoformat()
            if key in result:
                first = doc.key_marks.get(path + (key,))
                self.problems.add(
                    "E105",
                    "duplicate-key",
                    f"key '{key}' appears twice"
                    + (f" (first at line {first[0]})" if first else ""),
                    _mark(key_node),
                    hint="remove or rename one of them; YAML would silently keep only the last",
                )
                continue
            doc.key_marks[path + (key,)] = _mark(key_node)
            result[key] = self.build(value_node, path + (key,))
        return result

    def merge(self, key_node: yaml.Node, value_node: yaml.Node, path: Path) -> None:
        """``<<: *base`` copies another mapping in: report the alias (or the key).

        The mapping is left without the merged keys; ``path + ("<<",)`` is marked rejected so
        checks know why keys are missing.
        """
        self.doc.rejected.add(path + ("<<",))
        values = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        aliases = [v for v in values if v.tag == _ALIAS_TAG]
        for alias in aliases:
            self.alias(alias, None, merge=True)
        if not aliases:
            self.reject("E103", "yaml-tag", "merge keys (<<) are not allowed in a rule set",
                        key_node, "write the keys out in full")


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
