"""Where each ``${...}`` of a shell command stands: a small POSIX quoting scanner, and the
rendering that passes every value through an environment variable fitted to that place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stepstone.core.frozen import frozen
from stepstone.errors import InvalidArgument, TemplateError
from stepstone.spec.template import Ref, Template, ref_text

__all__ = ["ShellCommand", "quote_shell", "render_shell"]


# Quoting contexts of the scanner. "Bare-like" ones parse words: the top level, $(...) and `...`.
_BARE, _CMDSUB, _BACKTICK = "bare", "$(...)", "`...`"
_DQ, _SQ, _ANSI, _ARITH, _COMMENT = '"..."', "'...'", "$'...'", "$((...))", "# comment"
_HEREDOC, _HEREDOC_RAW = "here-document", "quoted here-document"
_BARE_LIKE = (_BARE, _CMDSUB, _BACKTICK)
_WORD_BREAK = " \t\n;&|()<>"


@dataclass(slots=True)
class _Frame:
    kind: str
    depth: int = 0  # parentheses open inside $(...) or $((...))
    delimiter: str = ""  # here-documents: the closing line
    strip_tabs: bool = False
    line: str = ""
    line_has_ref: bool = False
    pending: list[_Frame] | None = None  # here-documents whose bodies start at the next newline


class _Quoting:
    """A small POSIX shell scanner: which quoting context the next character stands in."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.stack = [_Frame(_BARE)]
        self.escaped = False  # the last character was an unquoted, unescaped backslash
        self.dollar = False  # the last character was a `$` that the shell would expand
        self.word_start = True
        self.delimiter_cut = False  # a here-document's delimiter word reached a ${...}

    def feed(self, chunk: str) -> None:
        """Consume a literal part of the command."""
        i = 0
        while i < len(chunk):
            i = self._step(chunk, i)

    def context(self, ref: Ref) -> str:
        """The quoting context ``ref`` stands in, or a :class:`TemplateError` if unsafe there."""
        frame = self.stack[-1]
        if self.delimiter_cut:
            self._refuse(ref, "a here-document delimiter cannot hold a ${...}")
        if self.escaped:
            self._refuse(ref, "a ${...} right after a backslash is ambiguous; remove the backslash")
        if frame.kind in (_ANSI, _ARITH, _HEREDOC_RAW):
            why = {
                _ANSI: "the shell would read escapes in the value; use '...' or \"...\"",
                _ARITH: "the value would be evaluated as arithmetic, which can run commands",
                _HEREDOC_RAW: "a quoted here-document never expands it; unquote the delimiter",
            }[frame.kind]
            self._refuse(ref, f"a ${{...}} inside {frame.kind} cannot be passed safely: {why}")
        if frame.kind == _HEREDOC:
            frame.line_has_ref = True
        self.word_start = self.dollar = False
        return frame.kind

    def _refuse(self, ref: Ref, problem: str) -> None:
        raise TemplateError(self.text, ref.offset + 1, problem)

    def _step(self, chunk: str, i: int) -> int:
        frame, char = self.stack[-1], chunk[i]
        nxt = chunk[i + 1 : i + 2]
        was_dollar, self.dollar = self.dollar, False
        if self.escaped:
            self.escaped, self.word_start = False, False
            return i + 1
        kind = frame.kind
        if kind == _SQ:
            if char == "'":
                self.stack.pop()
        elif kind == _ANSI:
            if char == "\\":
                return i + 2
            if char == "'":
                self.stack.pop()
        elif kind == _HEREDOC_RAW or (kind == _HEREDOC and char == "\n"):
            if char == "\n":
                line = frame.line.lstrip("\t") if frame.strip_tabs else frame.line
                if line == frame.delimiter and not frame.line_has_ref:
                    self.stack.pop()
                frame.line, frame.line_has_ref = "", False
            else:
                frame.line += char
        elif kind == _COMMENT:
            if char == "\n":
                self.stack.pop()
                return self._newline(i)
        elif kind == _ARITH:
            if char == "(":
                frame.depth += 1
            elif char == ")" and frame.depth:
                frame.depth -= 1
            elif char == ")":
                self.stack.pop()
                return i + (2 if nxt == ")" else 1)
        else:  # bare-like, "..." or an expanding here-document: `\`, `$`, backticks
            if kind == _HEREDOC:
                frame.line += char
            if char == "\\":
                self.escaped = True
            elif char == "$" and nxt == "(":
                if chunk[i + 2 : i + 3] == "(":
                    self.stack.append(_Frame(_ARITH))
                    return i + 3
                self.stack.append(_Frame(_CMDSUB))
                self.word_start = True
                return i + 2
            elif char == "$":
                self.dollar = True
                if kind in _BARE_LIKE and nxt == "'":
                    self.stack.append(_Frame(_ANSI))
                    return i + 2
            elif char == "`" and kind == _BACKTICK:
                self.stack.pop()
            elif char == "`":
                self.stack.append(_Frame(_BACKTICK))
                self.word_start = True
                return i + 1
            elif kind == _DQ and char == '"':
                self.stack.pop()
            elif kind in _BARE_LIKE:
                return self._bare(frame, chunk, i, was_dollar)
        self.word_start = False
        return i + 1

    def _bare(self, frame: _Frame, chunk: str, i: int, was_dollar: bool) -> int:
        char = chunk[i]
        at_word_start, self.word_start = self.word_start, char in _WORD_BREAK
        if char == "'":
            self.stack.append(_Frame(_SQ))
        elif char == '"':
            self.stack.append(_Frame(_DQ))
        elif char == "#" and at_word_start and not was_dollar:
            self.stack.append(_Frame(_COMMENT))
        elif char == "(" and at_word_start and chunk[i + 1 : i + 2] == "(":
            self.stack.append(_Frame(_ARITH))  # bash's (( arithmetic ))
            return i + 2
        elif char == "(" and frame.kind == _CMDSUB:
            frame.depth += 1
        elif char == ")" and frame.kind == _CMDSUB:
            if frame.depth:
                frame.depth -= 1
            else:
                self.stack.pop()
        elif char == "<" and chunk[i + 1 : i + 2] == "<" and chunk[i + 2 : i + 3] != "<":
            return self._heredoc(frame, chunk, i + 2)
        elif char == "<" and chunk[i + 1 : i + 3] == "<<":
            return i + 3  # a here-string is an ordinary word
        elif char == "\n":
            return self._newline(i)
        return i + 1

    def _heredoc(self, frame: _Frame, chunk: str, i: int) -> int:
        """Read ``<<[-]WORD`` (after ``<<``); its body starts at the next newline."""
        strip_tabs = chunk[i : i + 1] == "-"
        i += strip_tabs
        while i < len(chunk) and chunk[i] in " \t":
            i += 1
        word, quoted = "", False
        while i < len(chunk) and chunk[i] not in _WORD_BREAK:
            char = chunk[i]
            if char in "'\"":
                close = chunk.find(char, i + 1)
                close = len(chunk) if close < 0 else close
                word, quoted, i = word + chunk[i + 1 : close], True, close + 1
            elif char == "\\":
                word, quoted, i = word + chunk[i + 1 : i + 2], True, i + 2
            else:
                word, i = word + char, i + 1
        if i >= len(chunk):
            self.delimiter_cut = True
        kind = _HEREDOC_RAW if quoted else _HEREDOC
        frame.pending = [
            *(frame.pending or []),
            _Frame(kind, delimiter=word, strip_tabs=strip_tabs),
        ]
        self.word_start = True
        return i

    def _newline(self, i: int) -> int:
        frame = self.stack[-1]
        self.word_start = True
        if frame.kind in _BARE_LIKE and frame.pending:
            self.stack.extend(reversed(frame.pending))
            frame.pending = None
        return i + 1


@frozen
class ShellCommand:
    """A command ready for ``sh -c``: its text with the n-th ``${...}`` replaced by a reference
    to ``STEPSTONE_V<n>`` fitted to its quoting context, and those expressions in order. It does
    not depend on the values, so a command is quoted once and run many times."""

    text: str
    refs: tuple[Ref, ...]

    def variables(self, values: Sequence[Any]) -> dict[str, str]:
        """The ``STEPSTONE_V<n>`` variables holding the text of ``values`` (one per
        expression, in order; see :func:`value_text`)."""
        if len(values) != len(self.refs):
            raise InvalidArgument(
                f"shell command: {len(self.refs)} expressions but {len(values)} values"
            )
        return {
            f"STEPSTONE_V{n}": ref_text(ref, value)
            for n, (ref, value) in enumerate(zip(self.refs, values, strict=True), 1)
        }


def quote_shell(template: Template) -> ShellCommand:
    """The :class:`ShellCommand` of ``template``. Raises :class:`TemplateError` for a ``${...}``
    standing where no reference is safe (``$'...'``, arithmetic, a quoted here-document, after
    a backslash)."""
    scanner, out, refs = _Quoting(template.text), list[str](), list[Ref]()
    for part in template.parts:
        if isinstance(part, str):
            scanner.feed(part)
            out.append(part)
            continue
        dollar = scanner.dollar
        context = scanner.context(part)
        refs.append(part)
        name = f"STEPSTONE_V{len(refs)}"
        if dollar:  # a literal `$` before the value: keep it one
            out[-1] = out[-1][:-1] + "\\$"
        if context == _SQ:
            out.append(f"'\"${{{name}}}\"'")
        elif context in _BARE_LIKE:
            out.append(f'"${{{name}}}"')
        else:
            out.append(f"${{{name}}}")
    return ShellCommand("".join(out), tuple(refs))


def render_shell(template: Template, values: Sequence[Any]) -> tuple[str, dict[str, str]]:
    """The shell text and the variables to run it with (:func:`quote_shell`, then
    :meth:`ShellCommand.variables`): the n-th ``${...}`` becomes a reference to
    ``STEPSTONE_V<n>`` holding the text of the n-th value."""
    command = quote_shell(template)
    return command.text, command.variables(values)
