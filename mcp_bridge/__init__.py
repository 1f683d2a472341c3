"""mcp-bridge: connect stdio-only MCP clients to remote, OAuth-protected MCP servers."""

__version__ = "0.1.0"
