#!/usr/bin/env python3
"""A fast fake browser for `$BROWSER`: GET the URL, follow redirects, and click "Allow".

Stdlib only (it runs under whatever `python3` is first on PATH). It follows redirects the
way a browser does (urllib: 301/302/303/307/308, POST becomes GET on 303), and when a page
holds a form with id `allow` (the demo authorization server's consent page) it submits it
with its hidden inputs, as a click on "Allow" would, without running any script. It stops
at the first page without such a form: normally the loopback listener's answer. It is how
`mcp-bridge demo --no-browser` signs in, and the fast browser of the test suite.

Usage: headless_browser.py URL (or `python -m mcp_bridge.demo.headless_browser URL`).
Exit status 0 when a final page was reached (whatever it says: the listener's page decides
success), 1 on a network error. If BROWSER_RECORD names a
file, the final URL and page are written to it as JSON (tests read it).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin

MAX_FORMS = 5  # consent pages clicked through before giving up (a loop guard)
TIMEOUT_S = 60.0


class AllowForm(HTMLParser):
    """Finds <form id="allow"> and its hidden inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.method = "get"
        self.fields: dict[str, str] = {}
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form" and attributes.get("id") == "allow":
            self._inside = True
            self.action = attributes.get("action", "")
            self.method = attributes.get("method", "get").lower()
        elif tag == "input" and self._inside and "name" in attributes:
            self.fields[attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def fetch(
    opener: urllib.request.OpenerDirector, request: urllib.request.Request
) -> tuple[str, int, str]:
    try:
        with opener.open(request, timeout=TIMEOUT_S) as response:
            return response.geturl(), response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:  # a 4xx/5xx page is still a page
        return error.geturl(), error.code, error.read().decode("utf-8", "replace")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: headless_browser.py URL", file=sys.stderr)
        return 2
    # No proxies: the servers are on 127.0.0.1, and the environment may name a proxy.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(argv[1])
    try:
        for _ in range(MAX_FORMS + 1):
            url, status, page = fetch(opener, request)
            form = AllowForm()
            form.feed(page)
            if form.action is None:
                break
            target = urljoin(url, form.action)
            data = urlencode(form.fields)
            if form.method == "post":
                request = urllib.request.Request(target, data=data.encode(), method="POST")
            else:
                request = urllib.request.Request(f"{target}?{data}")
    except OSError as exc:
        print(f"headless_browser: {exc}", file=sys.stderr)
        return 1
    record = os.environ.get("BROWSER_RECORD")
    if record:
        with open(record, "w", encoding="utf-8") as out:
            json.dump({"url": url, "status": status, "page": page}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
