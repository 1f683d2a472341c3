"""The status page's HTML: one pure function from what to show to the document.

Every piece of text that reaches the page (server names and URLs from servers.toml, issuers,
scopes and errors from authorization servers, the vault's description) goes through
`html.escape`, quotes included, whether it lands in an element or an attribute. The page
needs no script: each button is a plain form POST, and the Content-Security-Policy
(`CONTENT_SECURITY_POLICY`) allows none, nor any frame, image or other origin; the one
inline style is allowed by its hash.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape

from mcp_bridge.engine.status_report import (
    Report,
    ServerRow,
    refresh_text,
    scopes_text,
    token_text,
)

__all__ = ["CONTENT_SECURITY_POLICY", "PageView", "render_page"]

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem; color: #1d2330; }
h1 { font-size: 1.4rem; margin: 0 0 .5rem; }
p.meta { margin: .2rem 0; color: #4a5468; }
table { border-collapse: collapse; margin-top: 1.2rem; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .5rem .7rem;
  border-bottom: 1px solid #d8dce5; }
th { background: #f1f3f8; font-weight: 600; }
code { font-size: .9em; overflow-wrap: anywhere; }
.ok { color: #17663a; font-weight: 600; } .no { color: #9a3412; font-weight: 600; }
.note { display: block; color: #4a5468; font-size: .9em; margin-top: .3rem; }
form { display: inline; } button { font: inherit; padding: .2rem .8rem; margin: 0 .2rem .2rem 0; }
"""
STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True, slots=True)
class PageView:
    """What the page shows. `notes`: a line per server key (how its last Login or Log out
    went); `sign_in_urls`: the authorization URL of a login waiting for the user."""

    rows: Sequence[ServerRow]
    daemon: Report
    vault: str
    csrf_token: str
    servers_problem: str | None = None  # why servers.toml cannot be read
    notes: Mapping[str, str] = field(default_factory=dict)
    sign_in_urls: Mapping[str, str] = field(default_factory=dict)


def render_page(view: PageView) -> str:
    rows = "".join(_row(row, view) for row in view.rows) or (
        '<tr><td colspan="6">No server yet: <code>mcp-bridge add NAME URL</code> names one, '
        "<code>mcp-bridge login URL</code> signs in to one.</td></tr>"
    )
    problem = (
        f'<p class="meta no">servers.toml cannot be read: {escape(view.servers_problem)}</p>'
        if view.servers_problem
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>mcp-bridge status</title><style>{_STYLE}</style></head><body>"
        "<h1>mcp-bridge</h1>"
        f'<p class="meta">Daemon: {escape(_daemon_text(view.daemon))}</p>'
        f'<p class="meta">Vault key: {escape(view.vault)}</p>{problem}'
        "<table><thead><tr><th>Server</th><th>Login</th><th>Access token</th><th>Scopes</th>"
        f"<th>Last refresh</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
        "</body></html>"
    )


def _row(row: ServerRow, view: PageView) -> str:
    name = f"<strong>{escape(row.name)}</strong><br>" if row.name else ""
    tokens, refresh = row.tokens, row.refresh
    state_class = "ok" if tokens is not None else "no"
    login = f'<span class="{state_class}">{escape(row.login_state)}</span>'
    if row.login is not None and row.login.get("issuer"):
        login += f'<span class="note">at {escape(str(row.login["issuer"]))}</span>'
    if row.key in view.notes:
        login += f'<span class="note">{escape(view.notes[row.key])}</span>'
    sign_in = view.sign_in_urls.get(row.key)
    if sign_in is not None and sign_in.startswith(("https://", "http://")):
        login += (
            f'<span class="note"><a href="{escape(sign_in)}" rel="noreferrer noopener" '
            'target="_blank">Open the sign-in page</a></span>'
        )
    return (
        f"<tr><td>{name}<code>{escape(row.url)}</code></td><td>{login}</td>"
        f"<td>{escape(token_text(tokens)) if tokens else '&mdash;'}</td>"
        f"<td>{escape(scopes_text(tokens)) if tokens else '&mdash;'}</td>"
        f"<td>{escape(refresh_text(refresh)) if refresh else 'not refreshed yet'}</td>"
        f"<td>{_button('login', 'Log in', row.key, view.csrf_token)}"
        f"{_button('logout', 'Log out', row.key, view.csrf_token) if row.login else ''}</td></tr>"
    )


def _button(action: str, label: str, key: str, csrf_token: str) -> str:
    # A relative action: the page's own path (which holds the secret) + the action.
    return (
        f'<form method="post" action="{action}">'
        f'<input type="hidden" name="csrf" value="{escape(csrf_token)}">'
        f'<input type="hidden" name="server" value="{escape(key)}">'
        f'<button type="submit" class="{action}">{label}</button></form>'
    )


def _daemon_text(daemon: Report) -> str:
    return (
        f"running, pid {daemon.get('pid')}, mcp-bridge {daemon.get('version')}, "
        f"up {daemon.get('uptime_s')} s, {daemon.get('connections')} client(s) connected"
    )
