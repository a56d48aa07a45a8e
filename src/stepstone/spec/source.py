"""A YAML document's text as plain JSON values plus the ``line:column`` of every node.

The file is composed into PyYAML's node tree (the C loader when available) and turned into plain
values in one walk that records where each value and each mapping key stands, keyed by its JSON
path, so every later check can say ``flow.yaml:12:7: $.workflow.steps[2].next: ...``.
"""

from __future__ import annotations

import math
import re
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import field
from pathlib import Path
from types import ModuleType
from typing import Any

from stepstone.core.digest import sha256
from stepstone.core.frozen import record
from stepstone.errors import SpecError

__all__ = ["JsonPath", "Source", "did_you_mean", "format_path", "parse_source"]

JsonPath = tuple[str | int, ...]
"""A JSON path as a tuple: ``("workflow", "steps", 2, "next")``."""

_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False}
_BOOLS["FALSE"] = False


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'apply'?)`` when a known word is close to ``word``, else ``""``."""
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def format_path(path: Sequence[str | int]) -> str:
    """``("workflow", "steps", 2)`` -> ``$.workflow.steps[2]``."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


@record
class Source:
    """One parsed YAML file: its data and where each part of it stands."""

    file: Path
    data: Any
    marks: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    styles: dict[JsonPath, str] = field(default_factory=dict)
    """The quoting of string scalars that are not plain (``"``, ``'``, ``|``, ``>``)."""

    @property
    def name(self) -> str:
        return str(self.file)

    def mark(self, path: JsonPath, *, key: bool = False) -> tuple[int, int]:
        """The 1-based ``(line, column)`` of the value at ``path`` (of its key with ``key``),
        or of its nearest parent that has one."""
        table = self.key_marks if key else self.marks
        probe = path
        while probe:
            found = table.get(probe) or self.marks.get(probe)
            if found:
                return found
            probe = probe[:-1]
        return self.marks.get((), (1, 1))

    def error_at(self, path: JsonPath, offset: int, problem: str) -> SpecError:
        """A :class:`SpecError` at character ``offset`` of the string scalar at ``path`` (its
        start when the string is a block scalar, where characters do not map to columns)."""
        line, column = self.mark(path)
        style = self.styles.get(path)
        if style in ('"', "'"):
            column += 1 + offset
        elif style is None:
            column += offset
        return SpecError(self.name, line, column, format_path(path), problem)

    def error(self, path: JsonPath, problem: str, *, key: bool = False) -> SpecError:
        """A :class:`SpecError` naming this file, the place of ``path`` and the problem."""
        line, column = self.mark(path, key=key)
        return SpecError(self.name, line, column, format_path(path), problem)


# Importing PyYAML compiles eleven regular expressions (the resolver's implicit tags, the
# constructor's timestamp, the pure-Python reader's NON_PRINTABLE), about 5% of a whole
# ``stepstone run -f`` process on CPython 3.11. While yaml is imported, each pattern a yaml module
# compiles is made a :class:`_LazyPattern` instead: compiled on its first use, so a document
# whose plain scalars start with no digit, sign, dot or y/n/t/f/o/~ letter never compiles the
# number, bool and null patterns at all, and the C loader that parse_source uses never needs
# NON_PRINTABLE. That one, when it is needed, is compiled as its complement (the characters it
# refuses): its character class ends in \U00010000-\U0010ffff, which ``re`` expands into a large
# charset, and the complement compiles in a fifteenth of the time and matches exactly the same
# characters (tests/test_spec_load.py checks every code point). Any other caller's pattern
# compiles as usual.
YAML_NON_PRINTABLE = "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
NON_PRINTABLE = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]"
_re_compile = re.compile
_yaml_import = threading.Lock()

# The resolver's implicit-tag patterns are tried on every plain scalar by its first character: a
# key like ``name`` or ``type`` tries bool and null, a value like ``1.0.0`` or ``3 steps`` tries
# int, float and timestamp, and compiling those five costs ~1.3 ms. Each has a necessary
# condition below, found by reading the pattern (every alternative of float has exactly one
# ``.``, a timestamp has ``-`` after a four-digit year, ...): a scalar that fails it cannot
# match, so the pattern is neither compiled nor run for it (``$`` also matches before a final
# newline: the words are listed with one too). A condition applies only to the pattern whose
# text has its SHA-256 (first 16 hex digits): a PyYAML with other patterns compiles them all.
# tests/test_spec_load.py checks each condition against its compiled pattern.
_BOOL_WORDS = frozenset(
    spelled + end
    for word in ("yes", "no", "true", "false", "on", "off")
    for spelled in (word, word.capitalize(), word.upper())
    for end in ("", "\n")
)
_NULL_WORDS = frozenset(
    word + end for word in ("~", "null", "Null", "NULL", "") for end in ("", "\n")
)
_INT_CHARS = frozenset("0123456789_+-:xXabcdefABCDEF\n")
_FLOAT_CHARS = frozenset("0123456789_+-.:eEinfINFaA\n")
_CANNOT_MATCH: dict[str, Any] = {
    "90122993b2c196c6": lambda v: v not in _BOOL_WORDS,  # bool
    "395f84e3478b4c61": lambda v: v not in _NULL_WORDS,  # null
    "ad0ff413efc02a93": lambda v: not _INT_CHARS.issuperset(v),  # int
    "7f8c815115d9215d": lambda v: v.count(".") != 1 or not _FLOAT_CHARS.issuperset(v),  # float
    "923a69950629a665": lambda v: len(v) < 10 or v[4] != "-",  # timestamp
}


class _LazyPattern:
    """A pattern compiled on first use; the methods PyYAML calls on its patterns."""

    __slots__ = ("_args", "_cannot", "_compiled")

    def __init__(self, pattern: Any, flags: Any) -> None:
        self._args = (pattern, flags)
        self._compiled: re.Pattern[Any] | None = None
        self._cannot: Any = None
        if isinstance(pattern, str):
            self._cannot = _CANNOT_MATCH.get(sha256(pattern.encode()).hexdigest()[:16])

    def _pattern(self) -> re.Pattern[Any]:
        if self._compiled is None:
            pattern, flags = self._args
            if pattern == YAML_NON_PRINTABLE:
                pattern = NON_PRINTABLE
            self._compiled = _re_compile(pattern, flags)
        return self._compiled

    def match(self, *args: Any) -> re.Match[Any] | None:
        if self._cannot is not None and len(args) == 1 and self._cannot(args[0]):
            return None
        return self._pattern().match(*args)

    def search(self, *args: Any) -> re.Match[Any] | None:
        return self._pattern().search(*args)

    def __getattr__(self, name: str) -> Any:  # anything else a pattern has
        return getattr(self._pattern(), name)


def _compile_for_yaml(pattern: Any, flags: Any = 0) -> Any:
    caller = sys._getframe(1).f_globals.get("__name__", "")
    if caller == "yaml" or caller.startswith("yaml."):
        return _LazyPattern(pattern, flags)
    return _re_compile(pattern, flags)


def import_yaml() -> ModuleType:
    """``import yaml``, without its one slow regular expression (see above)."""
    module = sys.modules.get("yaml")
    if module is not None:
        return module
    with _yaml_import:
        re.compile = _compile_for_yaml
        try:
            import yaml
        finally:
            re.compile = _re_compile
    return yaml


def parse_source(file: Path, text: str) -> Source:
    """Parse ``text`` (the contents of ``file``) into a :class:`Source`; malformed YAML, a
    duplicate key or a value JSON cannot hold raise :class:`SpecError` at its place."""
    yaml = import_yaml()

    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or str(exc)
        loader.dispose()
        raise SpecError(str(file), line, column, "", f"malformed YAML: {problem}") from None
    except yaml.YAMLError as exc:
        loader.dispose()
        raise SpecError(str(file), 1, 1, "", f"malformed YAML: {exc}") from None
    source = Source(file, None)
    try:
        if node is None:
            raise SpecError(str(file), 1, 1, "", "the file is empty (expected a document)")
        source.data = _Walker(source, loader).value(node, ())
    finally:
        loader.dispose()
    return source


class _Walker:
    """Turns nodes into plain values, recording marks; refuses what JSON cannot hold."""

    __slots__ = ("constructor", "source")

    def __init__(self, source: Source, constructor: Any) -> None:
        self.source, self.constructor = source, constructor

    def value(self, node: Any, path: JsonPath) -> Any:
        import yaml

        self.source.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise self.source.error(path, "YAML merge keys (<<) are not supported")
                key = self.scalar(key_node, path)
                if not isinstance(key, str):
                    key = str(key) if isinstance(key, int | float | bool) else None
                if key is None:
                    raise self.source.error(path, "mapping keys must be strings")
                at = (*path, key)
                self.source.key_marks[at] = (
                    key_node.start_mark.line + 1,
                    key_node.start_mark.column + 1,
                )
                if key in out:
                    raise self.source.error(at, f"duplicate key {key!r}", key=True)
                out[key] = self.value(value_node, at)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    def scalar(self, node: Any, path: JsonPath) -> Any:
        import yaml

        if not isinstance(node, yaml.ScalarNode):
            raise self.source.error(path, "mapping keys must be plain scalars")
        tag = node.tag
        if tag == "tag:yaml.org,2002:str":
            if node.style:
                self.source.styles[path] = node.style
            return node.value
        if tag == "tag:yaml.org,2002:bool":
            return _BOOLS.get(node.value, node.value.lower() in ("yes", "on", "y", "true"))
        if tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:null"):
            value = self.constructor.construct_object(node, deep=True)
            if isinstance(value, float) and not math.isfinite(value):
                raise self.source.error(path, f"{node.value!r} is not a JSON number")
            return value
        raise self.source.error(
            path, f"YAML tag {tag!r} is not allowed (workflow documents hold plain JSON values)"
        )
