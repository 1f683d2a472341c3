"""The per-user daemon: one process that owns every login, refresh and remote session.

    hello.py           the versioned first line each side sends (stdlib only: the shim uses it)
    transport.py       Unix socket or loopback TCP and its secret: listen, publish, find,
                       connect (stdlib only: the shim uses it)
    peer.py            who is on the other end of a Unix socket (its uid)
    socket_channel.py  a LineChannel over a shim's connection
    server.py          authenticate peers, serve sessions and commands, exit when idle

See shim/ for the other end, and docs/daemon-transport.md for the two transports.
"""
