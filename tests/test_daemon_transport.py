"""The daemon's transports without a daemon: the choice, the endpoint file, the proof
against listeners that are no daemon, the start lock's wait. The processes are in
test_daemon_lifecycle.py and test_daemon_access.py; the proof's lines in test_daemon_proof.py."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge.daemon import endpoint_file, transport
from mcp_bridge.daemon.proof import NotProven
from mcp_bridge.errors import ConfigError
from mcp_bridge.paths import bridge_paths
from mcp_bridge.process_lock import ProcessFileLock
from tests.fixtures.squatter import HANGS_UP, SILENT, squatting

SECRET = "s3cr3t-token_urlsafe-like-value"

# -- which transport ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "loopback"),
    [(None, False), ("", False), ("auto", False), ("tcp", True), (" TCP ", True), ("unix", False)],
)
def test_the_transport_is_the_unix_socket_unless_tcp_is_asked_for(
    value: str | None, loopback: bool
) -> None:
    environ = {} if value is None else {transport.TRANSPORT_ENV: value}
    assert transport.uses_loopback(environ) is loopback


def test_without_af_unix_loopback_is_chosen_and_unix_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(socket, "AF_UNIX")
    assert transport.uses_loopback({}) is True
    assert transport.uses_loopback({transport.TRANSPORT_ENV: "tcp"}) is True
    with pytest.raises(ConfigError, match="no Unix sockets"):
        transport.uses_loopback({transport.TRANSPORT_ENV: "unix"})


def test_an_unknown_transport_is_a_config_error_naming_the_choices() -> None:
    with pytest.raises(ConfigError) as caught:
        transport.uses_loopback({transport.TRANSPORT_ENV: "pipe"})
    assert "'pipe'" in caught.value.what
    assert "tcp or unix" in caught.value.next_step


# -- the endpoint file --------------------------------------------------------------------

addresses = st.builds(
    endpoint_file.LoopbackAddress,
    port=st.integers(1, 65535),
    secret=st.text(min_size=1),
    pid=st.integers(1, 2**31 - 1),
    version=st.text(),
)


@given(addresses)
def test_an_endpoint_round_trips(address: endpoint_file.LoopbackAddress) -> None:
    assert endpoint_file.parse_endpoint(endpoint_file.encode_endpoint(address)) == address


@given(
    st.binary()
    | st.builds(
        lambda doc: json.dumps(doc).encode(),
        st.dictionaries(
            st.sampled_from(["port", "secret", "pid", "version", "other"]),
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        ),
    )
)
def test_any_bytes_parse_to_a_valid_endpoint_or_to_none(data: bytes) -> None:
    parsed = endpoint_file.parse_endpoint(data)
    if parsed is not None:
        assert 0 < parsed.port < 65536
        assert parsed.pid > 0
        assert parsed.secret


@pytest.mark.parametrize(
    "doc",
    [
        {"port": True, "secret": SECRET, "pid": 7, "version": "1"},
        {"port": 0, "secret": SECRET, "pid": 7, "version": "1"},
        {"port": 65536, "secret": SECRET, "pid": 7, "version": "1"},
        {"port": "8080", "secret": SECRET, "pid": 7, "version": "1"},
        {"port": 8080, "secret": "", "pid": 7, "version": "1"},
        {"port": 8080, "secret": SECRET, "pid": 0, "version": "1"},
        {"port": 8080, "pid": 7, "version": "1"},
        [8080, SECRET, 7, "1"],
    ],
)
def test_a_malformed_endpoint_means_no_daemon(doc: object) -> None:
    assert endpoint_file.parse_endpoint(json.dumps(doc).encode()) is None


def test_the_secret_is_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    address = endpoint_file.LoopbackAddress(8080, SECRET, 7, "1")
    assert SECRET not in repr(address)
    assert SECRET not in str(address)
    assert SECRET not in f"{address!r} {address}"
    monkeypatch.setenv(transport.TRANSPORT_ENV, "tcp")
    listening = transport.listen(bridge_paths({"MCP_BRIDGE_HOME": str(tmp_path)}))
    with listening.sock:
        assert listening.secret is not None
        assert listening.secret not in repr(listening)
        transport.withdraw(listening)


def test_the_endpoint_file_is_private_and_withdrawn_only_while_it_is_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(transport.TRANSPORT_ENV, "tcp")
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(tmp_path)})
    first = transport.listen(paths)
    with first.sock:
        endpoint = paths.daemon_endpoint_file
        assert endpoint.stat().st_mode & 0o777 == 0o600
        found = transport.find_daemon(paths)
        assert isinstance(found, endpoint_file.LoopbackAddress)
        assert (found.port, found.secret, found.pid) == (
            first.sock.getsockname()[1],
            first.secret,
            os.getpid(),
        )
        transport.withdraw(first)
        assert not endpoint.exists()
    second = transport.listen(paths)  # the next daemon
    with second.sock:
        replaced = endpoint.read_bytes().replace(b'"pid":', b'"pid":1')
        endpoint.write_bytes(replaced)  # as if another daemon had written it since
        transport.withdraw(second)
        assert endpoint.read_bytes() == replaced


# -- the proof on a real socket -----------------------------------------------------------


LONG_LINE = b'{"mcp-bridge":2,"challenge":"' + b"a" * 8000 + b'"}\n'


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [
        (SILENT, "did not answer the challenge within 0.2 s"),
        (HANGS_UP, "closed the connection without answering"),
        (LONG_LINE, "more than one short line"),
        (b'{"mcp-bridge":2}\n{"mcp-bridge":2}\n', "more than one short line"),
        (b"HTTP/1.1 400 Bad Request\r\n", "not JSON"),
        (
            b'{"mcp-bridge":2,"challenge":"' + b"ab" * 32 + b'","proof":"' + b"0" * 64 + b'"}\n',
            "does not match the secret",
        ),
    ],
)
def test_a_listener_that_does_not_prove_itself_gets_nothing_but_a_nonce(
    answer: bytes | None, complaint: str
) -> None:
    with squatting(answer) as squatter:
        address = endpoint_file.LoopbackAddress(squatter.port, SECRET, os.getpid(), "1")
        with pytest.raises(NotProven, match=complaint):
            transport.connect(address, timeout_s=0.2)
    assert set(json.loads(squatter.everything)) == {"mcp-bridge", "challenge"}


def test_a_daemon_starts_in_place_of_a_listener_that_does_not_prove_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The endpoint file names a live pid and a port something listens on, but it cannot
    prove it holds the secret: a new daemon publishes its own endpoint all the same."""
    monkeypatch.setenv(transport.TRANSPORT_ENV, "tcp")
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(tmp_path)})
    refusal = b'{"mcp-bridge":1,"error":"The hello carries no daemon secret"}\n'
    with squatting(refusal) as squatter:
        paths.state_dir.mkdir(parents=True)
        stale = endpoint_file.LoopbackAddress(squatter.port, SECRET, os.getpid(), "0.0.1")
        paths.daemon_endpoint_file.write_bytes(endpoint_file.encode_endpoint(stale))
        listening = transport.listen(paths)
        with listening.sock:
            published = transport.find_daemon(paths)
            assert isinstance(published, endpoint_file.LoopbackAddress)
            assert published.port == listening.sock.getsockname()[1] != squatter.port
            transport.withdraw(listening)
    assert SECRET.encode() not in squatter.everything


# -- the start lock -----------------------------------------------------------------------


def test_the_start_lock_waits_then_gives_up_with_a_timeout(tmp_path: Path) -> None:
    holder = ProcessFileLock(tmp_path / "daemon.lock")
    waiter = ProcessFileLock(tmp_path / "daemon.lock")
    assert holder.try_acquire()
    with pytest.raises(TimeoutError, match="held by another process"):
        waiter.acquire(timeout_s=0.05)
    holder.release()
    waiter.acquire(timeout_s=0.05)
    waiter.release()


class ResetAtConnect(socket.socket):
    """A connect that the peer resets: what Linux answers a shim whose connection was still
    in the listener's queue when a stopping daemon closed it (seen on CI: the upgrade
    test's shim, polling for the old daemon to be gone, exited 1 with 'Connection reset by
    peer'). No listener can be made to do it on purpose."""

    def connect(self, address: object) -> None:
        raise ConnectionResetError(104, "Connection reset by peer")


@pytest.mark.parametrize("kind", ["unix", "tcp"])
def test_a_connection_reset_at_connect_means_nobody_listens(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address: transport.DaemonAddress = (
        transport.UnixSocketAddress(tmp_path / "daemon.sock")
        if kind == "unix"
        else endpoint_file.LoopbackAddress(1, "secret", os.getpid(), "0.1.0")
    )
    monkeypatch.setattr(socket, "socket", ResetAtConnect)
    assert transport.connect(address) is None
