"""Application access for ``check_access`` (LDAP/RADIUS outposts ask it as the end user, §3.2, §4.3)."""

from core.policies.engine import user_has_access

__all__ = ["user_has_access"]
