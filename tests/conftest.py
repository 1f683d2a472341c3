"""Shared test set-up. Peers live in tests/fixtures/, one module per kind of peer."""

from __future__ import annotations

import os

from hypothesis import settings

# No per-example deadline: a time limit is a timed assertion, and on a loaded 2-core CI
# machine an example that takes 200 ms once fails a test that is right (it happened).
settings.register_profile("mcp-bridge", deadline=None)
settings.load_profile("mcp-bridge")

# asyncio debug mode (slow callbacks, never-awaited coroutines) for every loop the tests make;
# read by each new event loop, so setting it here is early enough.
os.environ.setdefault("PYTHONASYNCIODEBUG", "1")

pytest_plugins = [
    "tests.fixtures.mcp_servers",
    "tests.fixtures.secret_service",
    "tests.fixtures.auth_server",
    "tests.fixtures.daemon_process",  # before bridge_process, which imports it
    "tests.fixtures.bridge_process",
    "tests.fixtures.oauth_client",
    "tests.fixtures.era_server",
    "tests.fixtures.tls_server",
    "tests.fixtures.http_proxy",
    "tests.fixtures.windows_user",
    "tests.fixtures.fault_server",
    "tests.fixtures.device_as",
]
