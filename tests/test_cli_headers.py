"""--header parsing: ${VAR} expansion, clear errors, and values kept out of messages."""

from __future__ import annotations

import pytest

from mcp_bridge.cli.run import parse_headers
from mcp_bridge.errors import ConfigError
from mcp_bridge.server_log import log_name_for


def test_header_values_expand_environment_variables() -> None:
    headers = parse_headers(
        ["Authorization: Bearer ${TOKEN}", "X-Team:  blue "], {"TOKEN": "s3cret"}
    )
    assert headers == {"Authorization": "Bearer s3cret", "X-Team": "blue"}


def test_unset_variable_names_the_variable_but_not_the_value() -> None:
    with pytest.raises(ConfigError, match=r"\$\{TOKEN\}, which is not set") as refused:
        parse_headers(["Authorization: Bearer ${TOKEN} and ${OTHER}"], {"OTHER": "hidden"})
    assert "hidden" not in str(refused.value)


@pytest.mark.parametrize("spec", ["no colon here", ": empty name", "Bad Name: x"])
def test_malformed_headers_are_refused(spec: str) -> None:
    with pytest.raises(ConfigError, match="Name: value"):
        parse_headers([spec], {})


def test_control_characters_cannot_smuggle_a_second_header() -> None:
    with pytest.raises(ConfigError, match="control character"):
        parse_headers(["X-A: ${V}"], {"V": "ok\r\nX-Injected: 1"})


def test_log_names_are_file_safe() -> None:
    assert log_name_for("https://mcp.example.com/v1/mcp") == "mcp.example.com-v1-mcp"
    assert log_name_for("http://127.0.0.1:8080/mcp?x=../../y") == "127.0.0.1-8080-mcp-x-..-..-y"


PROTOCOL_HEADERS = ["Accept", "mcp-protocol-version", "Mcp-Session-Id", "Mcp-Param-Region"]


@pytest.mark.parametrize("name", PROTOCOL_HEADERS)
def test_headers_the_protocol_sets_cannot_be_replaced(name: str) -> None:
    with pytest.raises(ConfigError, match="set by the MCP protocol itself"):
        parse_headers([f"{name}: x"], {})
