"""authlib grants for the OAuth2/OIDC provider: one grant per module (DESIGN §4.6)."""
