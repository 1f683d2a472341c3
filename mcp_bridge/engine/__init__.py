"""The engine: the one place a bridge is composed, for the daemon and `run --no-daemon`.

    profile.py    ServerProfile: a server and how to reach it, checked once from JSON
    registry.py   CredentialRegistry: per server, one OAuth provider and one HTTP session
    session.py    open_session(channel, profile, registry): a running BridgeSession

Imports point down: engine -> bridge, remote, auth, store. Nothing here knows sockets or
stdio; the daemon and cli/run.py hand it a LineChannel.
"""
