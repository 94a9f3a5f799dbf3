"""LDAPv3 sans-IO: codec (RFC 4511 on ldap3's pyasn1 schema), filters (RFC 4515), DNs (RFC 4514), search
semantics with paging (RFC 2696), the directory built as authentik's, and a bytes-in/bytes-out Connection."""
