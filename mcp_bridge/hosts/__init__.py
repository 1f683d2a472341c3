"""Desktop MCP clients' config files: which file each client reads, the entry that runs
this bridge, and edits that change that entry and nothing else (`mcp-bridge install`)."""
