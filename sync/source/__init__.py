"""The HTTP wing: what a run reads — Auth0's token endpoint and the extension's API (or an export
file) — as plain dicts and checked rows. It never imports SQLAlchemy, Alembic or the SQL wing
(pyproject.toml's import contracts check it)."""
