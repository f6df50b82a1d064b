"""Alembic environment: the tables of sync.schema, on the connection authz-sync hands over.

authz-sync runs migrations itself (`authz-sync db upgrade`), passing an open connection in
`config.attributes["connection"]`; plain `alembic` with a sqlalchemy.url works too.
"""

from alembic import context
from sqlalchemy import create_engine, pool

from sync.schema import metadata

config = context.config


def run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    run_migrations(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        run_migrations(connection)
