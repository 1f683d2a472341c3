"""HTTP transports to the remote MCP server. Knows nothing of OAuth: it asks an injected
CredentialProvider for headers and tells it about 401 and 403 answers."""
