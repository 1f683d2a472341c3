"""Each server's own log file (the daemon writes one per server, as `run --no-daemon` does)
and `mcp-bridge logs`, which prints and follows it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_bridge.cli.log_files import ServerLogFiles
from mcp_bridge.server_log import current_server_log, log_name_for, serving
from tests.fixtures.bridge_process import echo, mcp_bridge_cli, running_bridge
from tests.fixtures.mcp_servers import ServerProcess


@pytest.fixture
def per_server_logger(tmp_path: Path) -> Iterator[tuple[logging.Logger, ServerLogFiles]]:
    logger = logging.getLogger("mcp_bridge.test_logs")
    handler = ServerLogFiles(tmp_path)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield logger, handler
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_a_line_goes_to_the_file_of_the_server_it_was_logged_for(
    tmp_path: Path, per_server_logger: tuple[logging.Logger, ServerLogFiles]
) -> None:
    logger, _ = per_server_logger
    logger.info("about nobody")
    with serving("https://a.example/mcp"):
        logger.info("about a")
        with serving("https://b.example/mcp"):
            logger.info("about b")
        logger.info("a again")
    assert current_server_log() is None
    a = tmp_path / f"{log_name_for('https://a.example/mcp')}.log"
    b = tmp_path / f"{log_name_for('https://b.example/mcp')}.log"
    assert [line.rpartition(": ")[2] for line in a.read_text().splitlines()] == [
        "about a",
        "a again",
    ]
    assert b.read_text().splitlines()[0].endswith("about b")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([a.name, b.name])
    assert stat.S_IMODE(a.stat().st_mode) == 0o600


async def test_tasks_started_while_serving_log_to_that_server(
    tmp_path: Path, per_server_logger: tuple[logging.Logger, ServerLogFiles]
) -> None:
    logger, _ = per_server_logger

    async def later() -> None:
        await asyncio.sleep(0)
        logger.info("from a task")

    with serving("https://a.example/mcp"):
        task = asyncio.create_task(later())
    await task
    written = (tmp_path / f"{log_name_for('https://a.example/mcp')}.log").read_bytes()
    assert written.strip().endswith(b"from a task")


def test_past_max_open_the_least_recently_used_file_is_closed_and_reopened(
    tmp_path: Path, per_server_logger: tuple[logging.Logger, ServerLogFiles]
) -> None:
    logger, handler = per_server_logger
    urls = [f"https://s{i}.example/mcp" for i in range(ServerLogFiles.MAX_OPEN + 3)]
    for url in urls:
        with serving(url):
            logger.info("first")
    assert len(handler._open) == ServerLogFiles.MAX_OPEN
    with serving(urls[0]):  # closed long ago: opened again, appended to
        logger.info("second")
    lines = (tmp_path / f"{log_name_for(urls[0])}.log").read_text().splitlines()
    assert [line.rpartition(": ")[2] for line in lines] == ["first", "second"]
    assert len(list(tmp_path.iterdir())) == len(urls)


async def test_the_daemon_keeps_a_log_per_server_that_logs_prints(
    sdk_stateful: ServerProcess, everything_streamable: ServerProcess, bridge_home: Path
) -> None:
    env: dict[str, str] = {}
    for name, server in (("first", sdk_stateful), ("second", everything_streamable)):
        assert (await mcp_bridge_cli(bridge_home, "add", name, server.url, env=env))[0] == 0
        async with running_bridge(bridge_home, name) as bridge:
            assert "result" in await bridge.initialize()
            await echo(bridge, "hello")

        code, said = await mcp_bridge_cli(bridge_home, "logs", name, env=env, stdout=True)
        assert code == 0
        assert f"connected to {server.url}" in said
        other = everything_streamable if server is sdk_stateful else sdk_stateful
        assert other.url not in said

    code, said = await mcp_bridge_cli(bridge_home, "logs", "-n", "500", env=env, stdout=True)
    assert code == 0
    assert "listening" in said
    # Stopping the daemon while a session closes is no error (Python 3.11's stream server
    # logged the cancelled connection as one, with a traceback).
    assert "ERROR" not in said


async def test_logs_of_a_server_never_served_says_so(bridge_home: Path) -> None:
    code, said = await mcp_bridge_cli(bridge_home, "logs", "https://never.example/mcp", env={})
    assert code == 2
    assert "No log for https://never.example/mcp yet" in said
    code, said = await mcp_bridge_cli(bridge_home, "logs", "nosuch", env={})
    assert code == 2
    assert "No server named 'nosuch'" in said


async def test_follow_prints_new_lines_across_a_rotation(bridge_home: Path) -> None:
    log_dir = bridge_home / "logs"
    log_dir.mkdir()
    log = log_dir / f"{log_name_for('https://f.example/mcp')}.log"
    log.write_text("old line\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mcp_bridge",
        "logs",
        "https://f.example/mcp",
        "-f",
        env={**os.environ, "MCP_BRIDGE_HOME": str(bridge_home)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            assert await process.stdout.readline() == b"old line\n"
            with log.open("a") as out:
                out.write("appended, half")
                out.flush()
                await asyncio.sleep(0.5)  # the unfinished line is not printed yet
                out.write(" and whole\n")
            assert await process.stdout.readline() == b"appended, half and whole\n"
            log.rename(log.with_suffix(".log.1"))  # what the rotating handler does
            log.write_text("after rotation\n")
            assert await process.stdout.readline() == b"after rotation\n"
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
