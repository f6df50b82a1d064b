"""authz-sync: copy the Auth0 Authorization Extension into a SQL database."""

__version__ = "0.1.0"
