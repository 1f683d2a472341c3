"""Set or remove one member of one object in JSON (or JSON with comments) text, leaving
every other byte as it was.

The files `mcp-bridge install` edits are also written by the user and by the client app:
other servers (with secrets in their `env`), comments, the app's own formatting. Loading and
dumping them would reformat all of that, so these edits splice text in or out where the
scanner (`jsonc`) found the members, in the file's own indentation and line endings. A new
member goes first in its object: then no other byte moves, and removing it gives the
original text back. Every edit is checked before it is returned: the result parses, means
the old document with just that change, and every other member's text is unchanged.
Pure: text in, text out. Knows nothing of MCP clients.
"""

from __future__ import annotations

import json

from mcp_bridge.hosts.jsonc import WHITESPACE, Document, JsoncError, Member, Value, parse

DEFAULT_UNIT = "  "  # the indentation step where the file shows none


def entry(document: Document, container: str, name: str) -> tuple[bool, object]:
    """(True, root[container][name]) when there is one, else (False, None). Raises
    JsoncError when the root or the container is not an object, or names repeat."""
    box = _container(document, container)
    if box is None:
        return False, None
    found = _only(document, box.value, name)
    if found is None:
        return False, None
    return True, _slice(document, found.value.start, found.value.end).data()


def put_entry(text: str, container: str, name: str, value: object, *, lenient: bool) -> str:
    """`text` with root[container][name] set to `value`: the member's value replaced, or a
    new member put first in the container, or the container made (first in the root)."""
    document = parse(text, lenient=lenient)
    unit, newline = _style(document)
    box = _container(document, container)
    if box is None:
        changed = _insert(document, document.root, container, {name: value}, unit, newline)
    else:
        old = _only(document, box.value, name)
        if old is None:
            changed = _insert(document, box.value, name, value, unit, newline)
        else:
            indent = _indent(text, old.start) if _starts_line(text, old.start) else None
            new_value = _dump(value, indent, unit, newline)
            changed = text[: old.value.start] + new_value + text[old.value.end :]
    return _checked(document, changed, container, name, (True, value))


def drop_entry(text: str, container: str, name: str, *, lenient: bool) -> str:
    """`text` without root[container][name] (unchanged when there is none). The member's
    lines go with it, and the comma that separated it."""
    document = parse(text, lenient=lenient)
    box = _container(document, container)
    found = None if box is None else _only(document, box.value, name)
    if box is None or found is None:
        return text
    return _checked(document, _cut(text, box.value, found), container, name, (False, None))


def _container(document: Document, key: str) -> Member | None:
    if document.root.members is None:
        raise JsoncError(document.text, document.root.start, "the document is not an object")
    box = _only(document, document.root, key)
    if box is not None and box.value.members is None:
        raise JsoncError(document.text, box.value.start, f'"{key}" is not an object')
    return box


def _only(document: Document, obj: Value, key: str) -> Member | None:
    found = [member for member in obj.members or () if member.key == key]
    if len(found) > 1:
        raise JsoncError(document.text, found[1].start, f'"{key}" appears twice')
    return found[0] if found else None


def _slice(document: Document, start: int, end: int) -> Document:
    blanks = tuple((a - start, b - start) for a, b in document.blanks if start <= a and b <= end)
    text = document.text[start:end]
    return Document(text, Value(0, len(text)), blanks, document.lenient)


def _style(document: Document) -> tuple[str, str]:
    """The file's indentation step and line ending."""
    text = document.text
    newline = "\r\n" if "\r\n" in text else "\n"
    for obj in _objects_near_root(document):
        first = obj.members[0].start if obj.members else None
        if first is not None and _starts_line(text, first):
            inner, outer = _indent(text, first), _indent(text, obj.start)
            if inner.startswith(outer) and len(inner) > len(outer):
                return inner[len(outer) :], newline
    return DEFAULT_UNIT, newline


def _objects_near_root(document: Document) -> list[Value]:
    root = document.root
    inner = [m.value for m in root.members or () if m.value.members is not None]
    return [root, *inner]


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _indent(text: str, pos: int) -> str:
    start = _line_start(text, pos)
    end = start
    while end < len(text) and text[end] in " \t":
        end += 1
    return text[start:end]


def _starts_line(text: str, pos: int) -> bool:
    return not text[_line_start(text, pos) : pos].strip(" \t")


def _dump(value: object, indent: str | None, unit: str, newline: str) -> str:
    """`value` as JSON: on one line when `indent` is None; else an object's members one a
    line, at `indent` plus `unit`, and an array of plain values on one line, the way these
    entries are written by hand."""
    if indent is None or not _nests(value):
        return json.dumps(value, ensure_ascii=False)
    inner = indent + unit
    if isinstance(value, dict):
        parts = [
            f"{json.dumps(k, ensure_ascii=False)}: {_dump(v, inner, unit, newline)}"
            for k, v in value.items()
        ]
        brackets = "{}"
    else:
        assert isinstance(value, list)
        parts = [_dump(item, inner, unit, newline) for item in value]
        brackets = "[]"
    body = ",".join(f"{newline}{inner}{part}" for part in parts)
    return f"{brackets[0]}{body}{newline}{indent}{brackets[1]}"


def _nests(value: object) -> bool:
    """An object with members, or an array holding one: what goes on several lines."""
    if isinstance(value, dict):
        return bool(value)
    return isinstance(value, list) and any(isinstance(item, dict | list) and item for item in value)


def _line_end_after_brace(text: str, brace: int) -> int | None:
    """Where the line of the `{` at `brace` ends, when only blanks and same-line comments
    follow it there: the place a new first member's line goes."""
    pos = brace + 1
    while True:
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if text.startswith("/*", pos):
            end = text.find("*/", pos + 2)
            if "\n" in text[pos:end]:
                return None
            pos = end + 2
            continue
        if text.startswith("//", pos):
            pos = text.find("\n", pos)
            if pos < 0:
                return None
            return pos - 1 if text[pos - 1] == "\r" else pos
        return pos if text.startswith(("\n", "\r\n"), pos) else None


def _insert(document: Document, obj: Value, key: str, value: object, unit: str, nl: str) -> str:
    text = document.text
    brace, close = obj.start, obj.end - 1

    def member(indent: str | None) -> str:
        return f"{_dump(key, None, unit, nl)}: {_dump(value, indent, unit, nl)}"

    outer = _indent(text, brace)
    if not obj.members:
        inner = outer + unit
        if not text[brace + 1 : close].strip(WHITESPACE):  # `{}`, `{ }`: made multi-line
            return f"{text[: brace + 1]}{nl}{inner}{member(inner)}{nl}{outer}{text[close:]}"
        at = _line_end_after_brace(text, brace)  # comments inside: they stay after it
        if at is None:  # `{ /* ... */ }`: inline, so that removing it gives this back
            return f"{text[: brace + 1]}{member(None)}{text[brace + 1 :]}"
        return f"{text[:at]}{nl}{inner}{member(inner)}{text[at:]}"
    first = obj.members[0].start
    if not _starts_line(text, first):  # `{"a": 1}`: the new member goes inline, first
        return f"{text[:first]}{member(None)}, {text[first:]}"
    indent = _indent(text, first)
    at = _line_end_after_brace(text, brace)
    if at is None:  # before the first member's line (after any comment above it)
        at = _line_start(text, first) - 1
        at -= text[at - 1] == "\r"
    return f"{text[:at]}{nl}{indent}{member(indent)},{text[at:]}"


def _after_blanks(text: str, pos: int) -> int:
    """The next significant position from `pos`, past whitespace and comments."""
    while True:
        while pos < len(text) and text[pos] in WHITESPACE:
            pos += 1
        if text.startswith("//", pos):
            end = text.find("\n", pos)
            pos = len(text) if end < 0 else end
        elif text.startswith("/*", pos):
            pos = text.find("*/", pos + 2) + 2
        else:
            return pos


def _rest_of_line_blank(text: str, pos: int) -> bool:
    while pos < len(text) and text[pos] in " \t\r":
        pos += 1
    return text.startswith(("\n", "//"), pos)


def _cut(text: str, obj: Value, found: Member) -> str:
    members = obj.members or ()
    index = members.index(found)
    end = found.value.end
    comma = _after_blanks(text, end)
    if text[comma] == ",":  # a member follows (or a trailing comma)
        if _starts_line(text, found.start) and _rest_of_line_blank(text, comma + 1):
            # Its whole lines go: from the line break before it to the one after it.
            return text[: _line_start(text, found.start) - 1] + text[text.find("\n", comma) :]
        after = comma + 1
        while text[after] in WHITESPACE:
            after += 1
        return text[: found.start] + text[after:]
    # The last member: the comma before it goes, and the blank run up to it.
    floor = obj.start + 1 if index == 0 else members[index - 1].value.end
    start = found.start
    while start > floor and text[start - 1] in " \t":
        start -= 1
    after = end
    while after < len(text) and text[after] in " \t":
        after += 1
    if text.startswith(("\n", "\r\n"), after):  # a line break after it stays: drop its own
        while start > floor and text[start - 1] in WHITESPACE:
            start -= 1
    if index > 0:
        separator = _after_blanks(text, floor)
        return text[:separator] + text[separator + 1 : start] + text[end:]
    changed = text[:start] + text[end:]
    close = obj.end - 1 - (end - start)
    if not changed[obj.start + 1 : close].strip(WHITESPACE):
        return changed[: obj.start + 1] + changed[close:]
    return changed


def _checked(
    before: Document, text: str, container: str, name: str, want: tuple[bool, object]
) -> str:
    """`text`, once it is sure to mean `before` with just root[container][name] changed to
    `want` and to keep every other member's text; else a JsoncError (a bug here)."""
    try:
        after = parse(text, lenient=before.lenient)
    except JsoncError as exc:
        raise JsoncError(text, None, f"the edit broke the document ({exc})") from exc
    expected = before.data()
    assert isinstance(expected, dict)
    box = expected.setdefault(container, {})
    assert isinstance(box, dict)
    box.pop(name, None)
    if want[0]:
        box[name] = want[1]
    if after.data() != expected or entry(after, container, name) != want:
        raise JsoncError(text, None, "the edit changed more than the entry")
    if _others(before, container, name) != _others(after, container, name):
        raise JsoncError(text, None, "the edit changed the text of other entries")
    return text


def _others(document: Document, container: str, name: str) -> list[tuple[str, str]]:
    text = document.text
    out: list[tuple[str, str]] = []
    for member in document.root.members or ():
        if member.key != container:
            out.append((member.key, text[member.start : member.value.end]))
            continue
        for inner in member.value.members or ():
            if inner.key != name:
                out.append((f"{container}/{inner.key}", text[inner.start : inner.value.end]))
    return out
