"""SESSION_ENGINE with Redis: core/accounts/session_store.py's cached store (a module per engine, as Django wants)."""

from core.accounts.session_store import CachedSessionStore as SessionStore

__all__ = ["SessionStore"]
