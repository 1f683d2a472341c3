"""Lines json.loads accepts but the bridge cannot carry, sent to a real `mcp-bridge run`: each
is answered with a parse error and the bridge keeps serving (issue 8).
"""

from __future__ import annotations

from pathlib import Path

from mcp_bridge.jsonrpc import MAX_DEPTH
from tests.fixtures.bridge_process import echo, running_bridge
from tests.fixtures.mcp_servers import ServerProcess, text_of

PARSE_ERROR = -32700


async def test_lines_json_loads_takes_but_the_bridge_cannot_carry_get_errors(
    sdk_stateless: ServerProcess, bridge_home: Path
) -> None:
    async with running_bridge(bridge_home, sdk_stateless.url) as bridge:
        await bridge.initialize()
        digits = b"7" * 5000
        deep = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH  # one level past the cap, with the envelope
        for line in (
            b'{"jsonrpc":"2.0","id":' + digits + b',"method":"tools/list"}',
            b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"n":' + digits + b"}}",
            b'{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"n":NaN}}',
            b'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"s":"\\ud800"}}',
            b'{"jsonrpc":"2.0","id":6,"method":"tools/call","params":' + deep + b"}",
        ):
            await bridge.write_line(line)
            error = await bridge.next_error()
            assert error["id"] is None
            assert error["error"]["code"] == PARSE_ERROR
        assert text_of(await echo(bridge, "still serving")) == "still serving"
        assert bridge.process.returncode is None
        assert await bridge.close_stdin_and_wait() == 0
