"""`mcp-bridge doctor`: each step a user would otherwise debug by hand, for one server, as
typed findings (findings.py), run in order by runner.py; read-only everywhere."""

from mcp_bridge.engine.checkup.findings import STEPS, Finding, Outcome, exit_code
from mcp_bridge.engine.checkup.runner import CheckupTarget, DaemonStatus, run_checkup

__all__ = [
    "STEPS",
    "CheckupTarget",
    "DaemonStatus",
    "Finding",
    "Outcome",
    "exit_code",
    "run_checkup",
]
