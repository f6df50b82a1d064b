"""Alembic environment: the tables of sync.schema, on the connection authz-sync hands over.

authz-sync runs migrations itself (`authz-sync db upgrade`), passing an open connection in
`config.attributes["connection"]`; plain `alembic` with a sqlalchemy.url works too.

With database.schema (PostgreSQL), that connection carries a schema_translate_map
({None: schema}): the tables land in the schema, and so does Alembic's version table. Alembic's
ALTER directives (add_column, drop_column, …) and text SQL in migrations do not go through that
map (alembic#555), so the transaction's search_path is set to the schema alone as well: they
find the tenant's tables, never another schema's.
"""

from alembic import context
from sqlalchemy import create_engine, pool, text

from sync.sql.engine import schema_of
from sync.sql.schema import metadata

config = context.config


def run_migrations(connection) -> None:
    schema = schema_of(connection)
    if schema:
        search_path = connection.dialect.identifier_preparer.quote_schema(schema)
        # Local to the caller's transaction (database.upgrade/downgrade): gone at its end.
        connection.execute(
            text("SELECT set_config('search_path', :path, true)"), {"path": search_path}
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema=schema,
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
