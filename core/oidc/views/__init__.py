"""HTTP views of the OAuth2/OIDC provider, one module per endpoint family."""
