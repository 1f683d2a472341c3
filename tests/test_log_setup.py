"""The log file and its rotated copies are private to the user (0600): they name servers,
URLs and errors that are nobody else's business (issue 8)."""

from __future__ import annotations

import logging
import logging.handlers
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_bridge.cli.log_setup import configure_logging

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """configure_logging replaces the root logger's handlers; put pytest's back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    aiohttp_level = logging.getLogger("aiohttp").level
    try:
        yield root
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.getLogger("aiohttp").setLevel(aiohttp_level)


@pytest.fixture
def configured_log(tmp_path: Path, root_logger: logging.Logger) -> Iterator[Path]:
    """Logging configured to a new file under the common umask, where plain file creation
    gives 0644."""
    old_umask = os.umask(0o022)
    try:
        log_file = tmp_path / "logs" / "server.log"
        configure_logging(log_file=log_file)
        yield log_file
    finally:
        os.umask(old_umask)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _file_handler(root: logging.Logger) -> logging.handlers.RotatingFileHandler:
    [handler] = [h for h in root.handlers if isinstance(h, logging.handlers.RotatingFileHandler)]
    return handler


def test_the_log_file_is_created_0600_even_under_a_lax_umask(configured_log: Path) -> None:
    logging.getLogger("mcp_bridge.test").warning("written")
    assert _mode(configured_log) == 0o600
    assert "written" in configured_log.read_text()


def test_a_log_file_an_older_version_left_0644_is_made_0600(
    tmp_path: Path, root_logger: logging.Logger
) -> None:
    log_file = tmp_path / "server.log"
    log_file.write_text("old lines\n")
    log_file.chmod(0o644)
    configure_logging(log_file=log_file)
    assert _mode(log_file) == 0o600
    assert log_file.read_text().startswith("old lines")  # appended to, not truncated


def test_rotated_and_fresh_files_stay_0600_after_a_rollover(
    configured_log: Path, root_logger: logging.Logger
) -> None:
    logger = logging.getLogger("mcp_bridge.test")
    for n in range(3):
        logger.warning("before rollover %d", n)
        _file_handler(root_logger).doRollover()
    logger.warning("after rollover")
    files = sorted(configured_log.parent.iterdir())
    assert [f.name for f in files] == ["server.log", "server.log.1", "server.log.2"]
    assert {f.name: _mode(f) for f in files} == dict.fromkeys(
        ["server.log", "server.log.1", "server.log.2"], 0o600
    )
    assert "after rollover" in configured_log.read_text()
