"""servers.toml: named servers, so a client's config can say `mcp-bridge run NAME`.

One `[servers.NAME]` table per server; its keys are `run`'s flags by their argparse dest
(`url`, `transport`, `header`, `client_id`, `scope`, ...). Standard library only, because
the `run` shim reads it: `tomllib` reads, and a small writer of our own writes the few value
types stored (strings, lists of strings, integers, numbers, booleans), atomically.

The file holds no secrets: a header's credential is stored as a `${VAR}` reference, which
`run` expands from the environment the client launches it with; client secrets come from
MCP_BRIDGE_CLIENT_SECRET (and MCP_BRIDGE_IDP_CLIENT_SECRET) or the vault, tokens from the
vault; key and ID token files are stored by path. `refuse_secrets` keeps literal ones out.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from pathlib import Path

from mcp_bridge.errors import ConfigError

__all__ = [
    "ENV_REFERENCE",
    "FIELDS",
    "FLAG_FIELDS",
    "Entry",
    "Value",
    "check_name",
    "dumps_servers",
    "find_server",
    "is_name",
    "load_servers",
    "merge_flags",
    "refuse_secrets",
    "save_servers",
]

Value = str | int | float | bool | list[str]
Entry = dict[str, Value]

# The keys a server table may hold and the type of each: `run`'s flags by argparse dest.
FIELDS: dict[str, type] = {
    "url": str,
    "transport": str,
    "header": list,
    "client_id": str,
    "client_metadata_url": str,
    "scope": list,
    "authorize_param": list,
    "callback_port": int,
    "callback_host": str,
    "allow_http": bool,
    "no_browser": bool,
    "device": bool,
    "use_id_token": bool,
    "no_resource": bool,
    "login_timeout": float,
    "login_wait": float,
    "grant": str,
    "client_key_file": str,
    "client_key_id": str,
    "idp_issuer": str,
    "idp_client_id": str,
    "idp_client_key_file": str,
    "id_token_file": str,
}
FLAG_FIELDS = tuple(key for key in FIELDS if key != "url")
# For messages: each type in words, and a value of it as TOML.
_TYPE_WORDS = {
    str: ("a string", '"…"'),
    list: ("a list of strings", '["…", "…"]'),
    int: ("an integer", "8765"),
    bool: ("true or false", "true"),
    float: ("a number", "30.0"),
}

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# No ':' or '/': a name can never be mistaken for a URL, nor a URL for a name. The first
# character is no '-' (argparse would read a flag) and no '.' (hidden-file look).
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_NAME_RULE = (
    "Use up to 64 letters, digits, '_', '.' and '-', starting with a letter, digit or '_', "
    "e.g. `mcp-bridge add github https://api.example.com/mcp`"
)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# A header value that is only references, optionally after an auth scheme ("Bearer ${T}").
_REFERENCES = r"(?:\$\{[A-Za-z_][A-Za-z0-9_]*\})+"
_ONLY_REFERENCES = re.compile(_REFERENCES)
_SCHEME_AND_REFERENCES = re.compile(r"[A-Za-z][A-Za-z0-9._~+/-]*\s+" + _REFERENCES)
_SECRET_HEADER_WORDS = ("auth", "token", "key", "secret", "cookie", "passw", "credential")
_ESCAPES = {code: f"\\u{code:04X}" for code in (*range(0x20), 0x7F)} | {
    ord('"'): '\\"',
    ord("\\"): "\\\\",
    0x08: "\\b",
    0x09: "\\t",
    0x0A: "\\n",
    0x0C: "\\f",
    0x0D: "\\r",
}
HEADER_COMMENT = """\
# mcp-bridge's named servers: `mcp-bridge run NAME` (and login, logout, token NAME) use
# the [servers.NAME] table below. `mcp-bridge add` and `remove` rewrite this file (other
# comments are not kept); it is fine to edit by hand. The keys are run's flags: url,
# transport, header, client_id, client_metadata_url, scope, authorize_param, ...
# No secrets here: write a credential as ${VAR} and set VAR in the client's "env".
"""


def is_name(text: str) -> bool:
    """Whether `run`'s positional names a server rather than giving a URL."""
    return _NAME.fullmatch(text) is not None


def check_name(name: str) -> str:
    if is_name(name):
        return name
    swapped = " (the name comes first, then the URL)" if "://" in name else ""
    raise ConfigError(f"{name!r} is not a server name{swapped}", next_step=_NAME_RULE)


def merge_flags(
    given: Mapping[str, object], stored: Mapping[str, Value], defaults: Mapping[str, object]
) -> dict[str, object]:
    """Each flag of `given` (None: not given on the command line) resolved: a given value
    wins, then the stored one, then the flag's default. Headers add up: the stored ones,
    less those a given header of the same name (any case) replaces, then the given ones."""
    merged: dict[str, object] = {}
    for key, value in given.items():
        if key == "header":
            extra = value if isinstance(value, list) else []
            stored_headers = stored.get("header", [])
            assert isinstance(stored_headers, list)
            replaced = {_header_name(spec) for spec in extra}
            kept = [spec for spec in stored_headers if _header_name(spec) not in replaced]
            merged[key] = kept + extra
            continue
        chosen = value if value is not None else stored.get(key, defaults.get(key))
        # A copy: argparse's list defaults are shared by every parse of the parser.
        merged[key] = list(chosen) if isinstance(chosen, list) else chosen
    return merged


def _header_name(spec: str) -> str:
    return spec.partition(":")[0].strip().lower()


def refuse_secrets(entry: Mapping[str, Value], path: Path) -> None:
    """ConfigError when a value to store in `path` carries a literal credential: a header
    whose name looks secret and whose value is not `${VAR}` references (an Authorization
    header may name its scheme: `Bearer ${TOKEN}`), or a URL with a password."""
    headers = entry.get("header", [])
    assert isinstance(headers, list)
    for spec in headers:
        name, _, value = spec.partition(":")
        name, value = name.strip(), value.strip()
        lower = name.lower()
        if not any(word in lower for word in _SECRET_HEADER_WORDS):
            continue
        pattern = _SCHEME_AND_REFERENCES if lower.endswith("authorization") else None
        if _ONLY_REFERENCES.fullmatch(value) or (pattern and pattern.fullmatch(value)):
            continue
        example = "Bearer ${TOKEN}" if pattern else "${VAR}"
        raise ConfigError(
            f"--header {name!r} has a literal value, and {path} holds no secrets",
            next_step=f"Write it as --header '{name}: {example}' and set the variable in the "
            'environment the client launches mcp-bridge with (its "env" setting)',
        )
    url = entry.get("url")
    if isinstance(url, str):
        from urllib.parse import urlsplit

        with contextlib.suppress(ValueError):  # a malformed URL is the URL check's to report
            if urlsplit(url).password is not None:
                raise ConfigError(
                    f"The URL has a password in it, and {path} holds no secrets",
                    next_step="Drop 'user:password@' from it; pass credentials in a "
                    "--header with a ${VAR} reference instead",
                )


# -- reading ------------------------------------------------------------------------------


def find_server(path: Path, name: str) -> Entry:
    """The server `name` of the file; ConfigError when there is none."""
    entry = load_servers(path).get(name)
    if entry is None:
        raise ConfigError(
            f"No server named {name!r} in {path}",
            next_step=f"Add it with `mcp-bridge add {name} https://…` (`mcp-bridge list` shows "
            "the names), or give the server's https:// URL",
        )
    return entry


def load_servers(path: Path) -> dict[str, Entry]:
    """The servers of the file, by name, in file order; none when there is no file.
    ConfigError naming the file, the line where known, and the fix for anything else."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(
            f"Cannot read {path}: {exc.strerror}", next_step="Check the file's permissions"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path} line {line} is not UTF-8 text", next_step="Save the file as UTF-8"
        ) from None
    import tomllib  # only `run NAME` pays for it, not `run URL`

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\(at line (\d+), column (\d+)\)$", str(exc))
        reason = str(exc)[: where.start()].strip() if where else str(exc)
        at = f" line {where.group(1)}, column {where.group(2)}" if where else ""
        raise ConfigError(
            f"{path}{at} is not valid TOML: {reason}",
            next_step='Fix it by hand (strings in double quotes: url = "https://…"; one '
            "[servers.NAME] table per server), or move the file aside and add the servers "
            "again with `mcp-bridge add`",
        ) from None
    return _servers_of(path, text, doc)


def _servers_of(path: Path, text: str, doc: dict[str, object]) -> dict[str, Entry]:
    for key in doc:
        if key != "servers":
            raise ConfigError(
                f"{path}{_line_of(text, None, key)}: unknown table or key {key!r}",
                next_step="Servers go in [servers.NAME] tables: rename or remove it",
            )
    servers = doc.get("servers", {})
    if not isinstance(servers, dict):
        raise ConfigError(
            f"{path}{_line_of(text, None, 'servers')}: 'servers' is not a table",
            next_step="Write one [servers.NAME] table per server",
        )
    loaded: dict[str, Entry] = {}
    for name, table in servers.items():
        at = f"{path}{_table_line(text, name)}"
        if not is_name(name):
            raise ConfigError(f"{at}: {name!r} is not a server name", next_step=_NAME_RULE)
        if not isinstance(table, dict):
            raise ConfigError(
                f"{at}: servers.{name} is not a table",
                next_step=f'Write it as a table: [servers.{name}] then url = "https://…"',
            )
        entry = {key: _checked(path, text, name, key, value) for key, value in table.items()}
        if "url" not in entry:
            raise ConfigError(
                f"{at}: server {name!r} has no url",
                next_step=f'Add url = "https://…" under [servers.{name}]',
            )
        loaded[name] = entry
    return loaded


def _checked(path: Path, text: str, name: str, key: str, value: object) -> Value:
    kind = FIELDS.get(key)
    at = f"{path}{_line_of(text, name, key)}: server {name!r}"
    if kind is None:
        near = key.replace("-", "_").lower().removesuffix("s")
        hint = f"Write it as {near!r}; the" if near in FIELDS else "Remove it; the"
        raise ConfigError(
            f"{at} has an unknown key {key!r}", next_step=f"{hint} keys are {', '.join(FIELDS)}"
        )
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # `login_wait = 30` is a fine way to write 30 seconds
    good = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    if kind is list:
        good = isinstance(value, list) and all(isinstance(item, str) for item in value)
    if not good:
        found = "a list with non-strings" if isinstance(value, list) else _found(value)
        words, sample = _TYPE_WORDS[kind]
        raise ConfigError(
            f"{at}: {key!r} must be {words}, not {found}",
            next_step=f"Write it like {key} = {sample}",
        )
    assert isinstance(value, str | int | float | bool | list)
    return value


def _found(value: object) -> str:
    for kind, (words, _) in _TYPE_WORDS.items():
        if type(value) is kind:
            return words
    return "a table" if isinstance(value, dict) else "a date or time"


def _line_of(text: str, name: str | None, key: str) -> str:
    """' line N' where `key` (under the table of server `name`) is written: best effort
    for messages, since tomllib reports positions only for syntax errors."""
    lines = text.split("\n")  # TOML's newlines; str.splitlines knows more
    start = _table_index(lines, name) if name is not None else 0
    wanted = re.compile(r'\s*"?' + re.escape(key) + r'"?\s*[=.\]]')
    for number in range(start or 0, len(lines)):
        if wanted.match(lines[number]) or lines[number].lstrip().startswith(f"[{key}"):
            return f" line {number + 1}"
    return ""


def _table_line(text: str, name: str) -> str:
    index = _table_index(text.split("\n"), name)
    return "" if index is None else f" line {index + 1}"


def _table_index(lines: list[str], name: str) -> int | None:
    table = re.compile(r'\s*\[\s*servers\s*\.\s*"?' + re.escape(name) + r'"?\s*\]')
    return next((i for i, line in enumerate(lines) if table.match(line)), None)


# -- writing ------------------------------------------------------------------------------


def dumps_servers(servers: Mapping[str, Mapping[str, Value]]) -> str:
    """The file's text: the header comment, then one [servers.NAME] table per server."""
    parts = [HEADER_COMMENT]
    for name, entry in servers.items():
        parts.append(f"\n[servers.{_key(name)}]\n")
        parts.extend(f"{_key(key)} = {_value(value)}\n" for key, value in entry.items())
    return "".join(parts)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _string(text: str) -> str:
    return '"' + text.translate(_ESCAPES) + '"'


def _value(value: Value) -> str:
    if isinstance(value, bool):  # before int: a bool is an int to Python
        return "true" if value else "false"
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ConfigError(f"The number {value} is too large to store")
        return str(value)
    if isinstance(value, float):
        return repr(value)  # '1e-05', '300.0', 'inf', 'nan': each a TOML float as well
    if isinstance(value, str):
        return _string(value)
    return "[" + ", ".join(_string(item) for item in value) + "]"


def save_servers(path: Path, servers: Mapping[str, Mapping[str, Value]]) -> None:
    """Replace the file atomically: a reader sees the old file or the new one, never half
    of one. Through a symlink the target is replaced (dotfile repositories link it)."""
    try:
        data = dumps_servers(servers).encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            "A value is not valid Unicode text",
            next_step="Check the command line for bytes in another encoding",
        ) from None
    from mcp_bridge.atomic_file import write_atomically

    try:
        write_atomically(path.resolve(), data)
    except OSError as exc:
        raise ConfigError(
            f"Cannot write {path}: {exc.strerror}",
            next_step="Check the directory's permissions and the free space",
        ) from None
