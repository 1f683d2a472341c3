"""MCP Bundles (`.mcpb`, the format Claude Desktop installs by double-click) that run this
bridge for one remote server: `mcp-bridge bundle URL|NAME -o NAME.mcpb`.

    manifest.py   the manifest, the bundle's pyproject.toml and entry point (no I/O)
    wheel.py      this installed mcp-bridge as a pure-Python wheel, to ship inside
    archive.py    reproducible zip files

A bundle holds no secret: a header's credential is a `${VAR}` reference, and the host asks
the user for VAR at install time (`user_config`, `sensitive`), keeps it in the OS keychain
and hands it to the bridge in its environment. The bridge itself travels as a wheel inside
the bundle, never fetched by name: the name `mcp-bridge` on PyPI belongs to another project.
"""
