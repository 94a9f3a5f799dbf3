"""The LDAP outpost: server.py (asyncio sockets, TLS) and handlers.py (the rules); the protocol is in
protocols/ldap/."""
