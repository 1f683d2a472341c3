"""A scanner for JSON, and for JSON with comments, that keeps positions: where each value
starts and ends, and where each object member's key is. `json_edit` splices text at those
places, so that an edit leaves every other byte of a file as it was.

Lenient mode is what Zed and VS Code read: `//` and `/* */` comments, trailing commas.
Whether a number, a literal or an escape is valid, json.loads decides (the scanner only
finds their ends), so a Document always means what json.loads says it means.
Pure: text in, positions out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MAX_DEPTH = 200
WHITESPACE = " \t\r\n"
_BOM = "\ufeff"
# A number or a literal, up to the next delimiter; json.loads judges whether it is one.
_SCALAR = re.compile(r"[^\s,:\[\]{}\"/]+")
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\.)*"', re.DOTALL)


class JsoncError(ValueError):
    """The text is not a JSON document of the shape asked for, or an edit would do more
    than it should. The message says where, as line and column."""

    def __init__(self, text: str, pos: int | None, what: str) -> None:
        if pos is not None:
            line = text.count("\n", 0, pos) + 1
            column = pos - text.rfind("\n", 0, pos)
            what = f"{what} (line {line}, column {column})"
        super().__init__(what)


@dataclass(frozen=True, slots=True)
class Member:
    key: str
    start: int  # the key's opening quote
    value: Value


@dataclass(frozen=True, slots=True)
class Value:
    start: int
    end: int  # just past the value; for an object, past its `}`
    members: tuple[Member, ...] | None = None  # an object's members; None for other values


@dataclass(frozen=True, slots=True)
class Document:
    text: str
    root: Value
    blanks: tuple[tuple[int, int], ...]  # comments and trailing commas: what json.loads lacks
    lenient: bool

    def data(self) -> object:
        """What a JSON(-with-comments) reader makes of the text."""
        chars = list(self.text)
        for start, end in self.blanks:
            chars[start:end] = " " * (end - start)
        body = "".join(chars).removeprefix(_BOM)
        try:
            return json.loads(body, parse_constant=_no_constant)
        except (json.JSONDecodeError, ValueError) as exc:
            raise JsoncError(self.text, None, f"not JSON: {exc}") from exc


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def parse(text: str, *, lenient: bool) -> Document:
    """The positions of `text`'s values and object members; raises JsoncError where the
    text is not one JSON value (comments and trailing commas allowed when `lenient`)."""
    scanner = _Scanner(text, lenient)
    root = scanner.value(0)
    scanner.skip()
    if scanner.pos != len(text):
        raise JsoncError(text, scanner.pos, "more text after the end of the document")
    document = Document(text, root, tuple(scanner.blanks), lenient)
    document.data()  # numbers, literals and escapes are json.loads's to judge
    return document


class _Scanner:
    def __init__(self, text: str, lenient: bool) -> None:
        self.text = text
        self.lenient = lenient
        self.pos = 1 if text.startswith(_BOM) else 0
        self.blanks: list[tuple[int, int]] = []

    def fail(self, what: str) -> JsoncError:
        return JsoncError(self.text, self.pos, what)

    def skip(self) -> None:
        """Past whitespace and, when lenient, comments."""
        text = self.text
        while self.pos < len(text):
            if text[self.pos] in WHITESPACE:
                self.pos += 1
            elif self.lenient and text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                end = len(text) if end < 0 else end
                self.blanks.append((self.pos, end))
                self.pos = end
            elif self.lenient and text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("a /* comment is never closed")
                self.blanks.append((self.pos, end + 2))
                self.pos = end + 2
            else:
                return

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def value(self, depth: int) -> Value:
        char = self.peek()
        start = self.pos
        if char in "{[":
            if depth >= MAX_DEPTH:
                raise self.fail(f"nested deeper than {MAX_DEPTH} levels")
            if char == "{":
                members = self.members(depth)
                return Value(start, self.pos, members)
            self.items(depth)
            return Value(start, self.pos)
        if char == '"':
            self.string()
            return Value(start, self.pos)
        match = _SCALAR.match(self.text, self.pos)
        if match is None:
            raise self.fail(f"expected a value, found {char!r}" if char else "the text ends")
        self.pos = match.end()
        return Value(start, self.pos)

    def string(self) -> str:
        match = _STRING.match(self.text, self.pos)
        if match is None:
            raise self.fail("a string is not closed, or holds a raw control character")
        self.pos = match.end()
        try:
            decoded: str = json.loads(match.group())
        except json.JSONDecodeError as exc:
            raise self.fail(f"a bad escape in a string: {exc.msg}") from exc
        return decoded

    def members(self, depth: int) -> tuple[Member, ...]:
        members: list[Member] = []
        self.pos += 1  # the {
        while True:
            char = self.peek()
            if char == "}" and (not members or self.lenient):
                self.pos += 1
                return tuple(members)
            if char != '"':
                raise self.fail("expected a member name in double quotes")
            start = self.pos
            key = self.string()
            if self.peek() != ":":
                raise self.fail("expected ':' after a member name")
            self.pos += 1
            members.append(Member(key, start, self.value(depth + 1)))
            if self.close_or_comma("}"):
                return tuple(members)

    def items(self, depth: int) -> None:
        self.pos += 1  # the [
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            self.value(depth + 1)
            if self.close_or_comma("]"):
                return
            if self.lenient and self.peek() == "]":
                self.pos += 1
                return

    def close_or_comma(self, close: str) -> bool:
        """Past a `,` (False) or the closing bracket (True). A comma right before the
        bracket (lenient) is blanked for json.loads; the caller accepts the bracket."""
        char = self.peek()
        if char == close:
            self.pos += 1
            return True
        if char != ",":
            raise self.fail(f"expected ',' or '{close}'")
        comma = self.pos
        self.pos += 1
        if self.lenient and self.peek() == close:
            self.blanks.append((comma, comma + 1))
        return False
