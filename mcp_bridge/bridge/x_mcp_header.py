"""`x-mcp-header`: tool arguments mirrored into `Mcp-Param-*` HTTP headers (2026-07-28).

Spec: 2026-07-28 streamable-http.mdx "Custom Headers from Tool Parameters". An HTTP
client MUST drop tools whose annotations break the rules from `tools/list`, and MUST send
`Mcp-Param-{Name}` for every annotated argument present in a `tools/call`. Pure: a schema
or an arguments object in, a verdict or a header dict out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from mcp_bridge.jsonrpc import JsonObject
from mcp_bridge.protocol import HEADER_PARAM_PREFIX
from mcp_bridge.remote.headers import encode_header_value

ANNOTATION = "x-mcp-header"

# RFC 9110 §5.6.2: token = 1*tchar. No control characters can match, CR/LF included.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PRIMITIVE_TYPES = frozenset({"string", "integer", "boolean"})
# The spec bounds annotated integers to the JavaScript safe range (Number.MAX_SAFE_INTEGER).
MAX_SAFE_INTEGER = 2**53 - 1

# JSON Schema 2020-12 keywords whose values are subschemas, by the shape of the value.
# Crossing any of them leaves the pure `properties` chain, so an annotation found beyond one
# makes the tool invalid. Data keywords (`const`, `enum`, `default`, `examples`) are never
# entered, so a value that happens to contain "x-mcp-header" is not mistaken for one, and
# `$ref` is never followed.
_ONE_SUBSCHEMA = frozenset(
    {
        "items",
        "contains",
        "additionalProperties",
        "propertyNames",
        "unevaluatedItems",
        "unevaluatedProperties",
        "not",
        "if",
        "then",
        "else",
        "contentSchema",
        "additionalItems",
    }
)
_LIST_OF_SUBSCHEMAS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_MAP_OF_SUBSCHEMAS = frozenset(
    {"patternProperties", "dependentSchemas", "$defs", "definitions", "dependencies"}
)

# Where an annotated property sits: the chain of `properties` keys from the schema root.
PropertyPath: TypeAlias = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParamHeader:
    """One annotated property: its path in the arguments and its header name suffix."""

    path: PropertyPath
    name: str  # the annotation value; the header is `Mcp-Param-{name}`


class UnsafeInteger(ValueError):
    """An annotated integer argument lies outside the JavaScript safe range (2026-07-28 Tools,
    x-mcp-header)."""

    def __init__(self, path: PropertyPath) -> None:
        super().__init__(
            f"argument {'.'.join(path)!r} is outside the range an Mcp-Param header may carry "
            f"(±{MAX_SAFE_INTEGER})"
        )
        self.path = path


def find_invalid_annotation(input_schema: object) -> str | None:
    """Why this tool's `inputSchema` breaks an `x-mcp-header` rule, or None when it does not."""
    seen: dict[str, PropertyPath] = {}
    for path, schema in _schema_positions(input_schema):
        if ANNOTATION not in schema:
            continue
        if not path:  # None: off the pure `properties` chain; (): the schema root itself
            return f"{ANNOTATION} is on a schema that is not reachable through `properties` alone"
        where = ".".join(path)
        name = schema[ANNOTATION]
        if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
            return f"{ANNOTATION} on {where!r} is not an HTTP header token"
        if not _is_primitive(schema.get("type")):
            return f"{ANNOTATION} on {where!r} is not on a string, integer or boolean property"
        if name.lower() in seen:
            first = ".".join(seen[name.lower()])
            return f"{ANNOTATION} {name!r} on {where!r} repeats the one on {first!r}"
        seen[name.lower()] = path
    return None


def param_headers_of(input_schema: object) -> tuple[ParamHeader, ...]:
    """The annotated properties of a schema that `find_invalid_annotation` accepted."""
    return tuple(
        ParamHeader(path, schema[ANNOTATION])
        for path, schema in _schema_positions(input_schema)
        if path and isinstance(schema.get(ANNOTATION), str)
    )


def mcp_param_headers(annotated: tuple[ParamHeader, ...], arguments: object) -> dict[str, str]:
    """`Mcp-Param-*` headers for one `tools/call`'s arguments.

    A missing or null value omits its header (spec table "Parameter value is null"). A value
    no header can carry (an object, a list) is omitted too: the server's own argument
    validation then rejects the call with a better message than a header mismatch.
    Raises UnsafeInteger for an integer beyond the JavaScript safe range.
    """
    headers: dict[str, str] = {}
    for param in annotated:
        value = _value_at(arguments, param.path)
        rendered = _render(value, param.path)
        if rendered is not None:
            headers[f"{HEADER_PARAM_PREFIX}{param.name}"] = encode_header_value(rendered)
    return headers


def _render(value: object, path: PropertyPath) -> str | None:
    # Spec "Type conversion": strings as-is, integers in decimal, booleans as true/false.
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(
            value
        )  # 42.0 from a JSON encoder is the integer 42 (servers compare numerically)
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise UnsafeInteger(path)
        return str(value)
    if isinstance(value, str):
        return value
    return None


def _value_at(arguments: object, path: PropertyPath) -> object:
    node = arguments
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _is_primitive(declared: object) -> bool:
    if isinstance(declared, str):
        return declared in _PRIMITIVE_TYPES
    # A nullable property (`["string", "null"]`) is still primitive: null just omits the header.
    if isinstance(declared, list) and declared:
        types = [t for t in declared if t != "null"]
        return len(types) == 1 and types[0] in _PRIMITIVE_TYPES
    return False


def _schema_positions(root: object) -> Iterator[tuple[PropertyPath | None, Mapping[str, Any]]]:
    """Every subschema with its `properties` path (None once another keyword was crossed).

    Iterative, so a hostile, deeply nested schema cannot exhaust the stack."""
    stack: list[tuple[PropertyPath | None, object]] = [((), root)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, dict):
            continue
        yield path, node
        for keyword, value in node.items():
            if keyword == "properties" and isinstance(value, dict):
                stack.extend(
                    ((*path, name) if path is not None else None, sub)
                    for name, sub in value.items()
                )
            elif keyword in _ONE_SUBSCHEMA:
                stack.append((None, value))
            elif keyword in _LIST_OF_SUBSCHEMAS and isinstance(value, list):
                stack.extend((None, sub) for sub in value)
            elif keyword in _MAP_OF_SUBSCHEMAS and isinstance(value, dict):
                stack.extend((None, sub) for sub in value.values())


@dataclass(frozen=True, slots=True)
class ToolListFilter:
    """A `tools/list` result with invalid tools removed, and what was learnt from it."""

    result: JsonObject  # the result to forward: the same object, `tools` replaced if needed
    annotated: dict[str, tuple[ParamHeader, ...]]  # tool name -> its annotated properties
    dropped: tuple[str, ...]  # "tool 'x': reason", for a warning (spec: SHOULD log)


def filter_tool_list(result: JsonObject) -> ToolListFilter:
    """Drop the tools whose `x-mcp-header` annotations are invalid (spec: MUST exclude)."""
    tools = result.get("tools")
    if not isinstance(tools, list):
        return ToolListFilter(result, {}, ())
    kept: list[object] = []
    annotated: dict[str, tuple[ParamHeader, ...]] = {}
    dropped: list[str] = []
    for tool in tools:
        if not isinstance(tool, dict):
            kept.append(tool)  # not ours to judge; the client's own validation will
            continue
        schema = tool.get("inputSchema")
        reason = find_invalid_annotation(schema)
        if reason is not None:
            dropped.append(f"tool {tool.get('name')!r}: {reason}")
            continue
        kept.append(tool)
        if isinstance(tool.get("name"), str):
            annotated[tool["name"]] = param_headers_of(schema)
    if not dropped:
        return ToolListFilter(result, annotated, ())
    return ToolListFilter({**result, "tools": kept}, annotated, tuple(dropped))


@dataclass(slots=True)
class ToolHeaders:
    """The annotated properties of every tool seen in `tools/list`, for later calls."""

    _by_tool: dict[str, tuple[ParamHeader, ...]] = field(default_factory=dict)

    def learn(self, result: JsonObject, *, is_first_page: bool) -> ToolListFilter:
        """Filter one `tools/list` page and remember its tools; the first page of a listing
        starts afresh, so tools the server removed are forgotten."""
        filtered = filter_tool_list(result)
        if is_first_page:
            self._by_tool.clear()
        self._by_tool.update(filtered.annotated)
        return filtered

    def knows(self, tool_name: object) -> bool:
        return isinstance(tool_name, str) and tool_name in self._by_tool

    def for_call(self, params: JsonObject) -> dict[str, str]:
        """`Mcp-Param-*` headers for a `tools/call` with these params (none for a tool not
        seen yet: a HeaderMismatch then makes the bridge read the list and retry).
        Raises UnsafeInteger."""
        name = params.get("name")
        annotated = self._by_tool.get(name, ()) if isinstance(name, str) else ()
        return mcp_param_headers(annotated, params.get("arguments"))
