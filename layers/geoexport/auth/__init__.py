"""Authentication: client credentials, bearer tokens (JWT, HS256) and the authorizer's decision."""
