"""The host config text edits (`put_entry`, `drop_entry`) that `mcp-bridge install` makes:
strings, comments, a BOM and trailing commas survive, edits that cannot be made exactly are
refused, and property tests over random JSON documents (with comments and trailing commas
too) give the text back byte for byte after an insert and a remove."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mcp_bridge.hosts.json_edit import drop_entry, put_entry
from mcp_bridge.hosts.jsonc import JsoncError, parse
from tests.fixtures.edit_checks import inserted

ENTRY = {"command": "/x/mcp-bridge", "args": ["run", "n"]}


@pytest.mark.parametrize(
    "text",
    [
        '{"s": {"a": "}{,//\\"/*"}}',
        '\ufeff{\n  "s": {\n    "a": 1\n  }\n}\n',
        '{\n  // c\n  "s": {\n    /* a\n    b */\n    "a": 1,\n  },\n}',
        '{\n  "s": {}, "t": [\n]}',
        '{"s": { /* empty */ }}',
        '{"s": {\n  // none yet\n}}',
    ],
)
def test_edits_keep_strings_comments_and_a_bom(text: str) -> None:
    before = parse(text, lenient=True).data()
    assert isinstance(before, dict)
    added = put_entry(text, "s", "n", ENTRY, lenient=True)
    assert inserted(text, added)
    assert parse(added, lenient=True).data() == {**before, "s": {**before["s"], "n": ENTRY}}
    removed = drop_entry(added, "s", "n", lenient=True)
    assert removed == text


@pytest.mark.parametrize(
    "text",
    ['{"s": 1}', '{"s": {"n": 1, "n": 2}}', '{"s": {}, "s": {}}', "// c\n{}", '{"a": 1,}'],
)
def test_edits_refuse_what_they_cannot_do_exactly(text: str) -> None:
    with pytest.raises(JsoncError):
        put_entry(text, "s", "n", ENTRY, lenient=False)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
OBJECTS = st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=4)


@given(
    document=OBJECTS,
    box=OBJECTS,
    has_box=st.booleans(),
    indent=st.sampled_from([None, 0, 1, 2, 4, "\t"]),
    compact=st.booleans(),
    ensure_ascii=st.booleans(),
    crlf=st.booleans(),
    container=st.sampled_from(["mcpServers", "servers"]) | st.text(max_size=4),
    name=st.text(max_size=6),
)
def test_inserting_then_removing_a_member_gives_the_text_back(
    document: dict[str, object],
    box: dict[str, object],
    has_box: bool,
    indent: int | str | None,
    compact: bool,
    ensure_ascii: bool,
    crlf: bool,
    container: str,
    name: str,
) -> None:
    assume(name not in box)
    document = {key: value for key, value in document.items() if key != container}
    if has_box:
        document[container] = box
    separators = (",", ":") if compact else None
    text = json.dumps(document, indent=indent, separators=separators, ensure_ascii=ensure_ascii)
    if crlf:
        text = text.replace("\n", "\r\n")
    added = put_entry(text, container, name, ENTRY, lenient=False)
    assert inserted(text, added)
    inside = box if has_box else {}
    assert json.loads(added) == {**document, container: {**inside, name: ENTRY}}
    removed = drop_entry(added, container, name, lenient=False)
    if has_box:
        assert removed == text
    else:  # the container put in for it stays, empty
        assert json.loads(removed) == {**document, container: {}}


def _commented(text: str, rnd: random.Random) -> str:
    """`text` (JSON) with comments after some `{ [ , :` and trailing commas before some
    `} ]`, outside strings: what a Zed or VS Code settings file may hold."""
    out: list[str] = []
    in_string = escaped = False
    last = ""
    for char in text:
        if in_string:
            in_string = escaped or char != '"'
            escaped = not escaped and char == "\\"
        elif char == '"':
            in_string = True
        elif char in "}]" and last not in "{[," and rnd.random() < 0.3:
            out.append(",")
        out.append(char)
        if not in_string and char in "{[,:" and rnd.random() < 0.3:
            out.append(rnd.choice([" /* c */", " // c\n", "\n// c\n", " /* a\nb */ "]))
        last = char if not char.isspace() else last
    return "".join(out)


@given(
    document=OBJECTS,
    box=OBJECTS,
    indent=st.sampled_from([None, 2, "\t"]),
    name=st.text(max_size=6),
    rnd=st.randoms(use_true_random=False),
)
def test_with_comments_and_trailing_commas_too(
    document: dict[str, object],
    box: dict[str, object],
    indent: int | str | None,
    name: str,
    rnd: random.Random,
) -> None:
    assume(name not in box)
    text = _commented(json.dumps({**document, "S": box}, indent=indent), rnd)
    added = put_entry(text, "S", name, ENTRY, lenient=True)
    assert inserted(text, added)
    assert parse(added, lenient=True).data() == {**document, "S": {**box, name: ENTRY}}
    assert drop_entry(added, "S", name, lenient=True) == text
