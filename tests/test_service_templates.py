"""The service templates `mcp-bridge service install` fills in, read by what reads them on
each OS: the launchd plist by plistlib, the Windows task XML by ElementTree; and packaging/
links to the very files the package ships. The systemd units, as installed, are checked by
systemd-analyze in test_service.py."""

from __future__ import annotations

import plistlib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mcp_bridge.cli import service_files
from tests.fixtures.windows_user import TASK_NS

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("command", "arguments"),
    [
        (
            ["/Applications/My <Tools> & co/mcp-bridge"],
            ["/Applications/My <Tools> & co/mcp-bridge"],
        ),
        (["/usr/bin/python3", "-m", "mcp_bridge"], ["/usr/bin/python3", "-m", "mcp_bridge"]),
    ],
)
def test_the_launchd_plist_renders_to_a_valid_plist(
    command: list[str], arguments: list[str]
) -> None:
    log_dir = Path("/Users/me/Library/Logs/mcp-bridge")

    plist = plistlib.loads(service_files.render_plist(command, log_dir).encode())

    assert plist["Label"] == "dev.mcp-bridge.daemon"
    assert plist["ProgramArguments"] == [*arguments, "daemon"]
    assert Path(plist["ProgramArguments"][0]).is_absolute()
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] is True
    assert plist["StandardErrorPath"] == f"{log_dir}/daemon-start.log"
    assert plist["StandardOutPath"] == plist["StandardErrorPath"]


def test_the_windows_task_parses_and_runs_mcp_bridge_daemon_at_logon() -> None:
    template = service_files.template_text("windows", "mcp-bridge-daemon.xml")
    filled = template.replace("@EXECUTABLE@", r"C:\Users\me\.local\bin\mcp-bridge.exe")
    filled = filled.replace("@USER@", r"PC\me")

    for text in (template, filled):
        task = ET.fromstring(text.encode())
        assert task.find("t:Triggers/t:LogonTrigger", TASK_NS) is not None
        assert task.findtext("t:Actions/t:Exec/t:Arguments", namespaces=TASK_NS) == "daemon"
    command = ET.fromstring(filled.encode()).findtext(
        "t:Actions/t:Exec/t:Command", namespaces=TASK_NS
    )
    assert command == r"C:\Users\me\.local\bin\mcp-bridge.exe"


def test_packaging_links_to_the_templates_the_package_ships() -> None:
    """packaging/ holds links, not copies: the package's templates are the only source."""
    templates = REPO / "mcp_bridge" / "service_templates"
    shipped = sorted(p.relative_to(templates) for p in templates.glob("*/*"))  # package-data
    assert len(shipped) == 4
    for relative in shipped:
        assert (REPO / "packaging" / relative).resolve() == (templates / relative).resolve()
