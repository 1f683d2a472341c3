"""The shim: what `mcp-bridge run` is when a daemon serves it. Standard library only, so
it answers in tens of milliseconds (hosts probe a stdio server with a ~150 ms deadline).

    connection.py  reach the daemon (daemon/transport.py), say the hello, start the daemon
                   when none answers
    flights.py     the requests in flight and the client's handshake (pure)
    relay.py       stdio <-> socket, and recovery when the daemon dies

Nothing here may import aiohttp, mcp, keyring or cryptography (tests check the import list),
nor, at import time, a POSIX-only module such as fcntl: the shim runs on Windows too.
"""
