"""Alembic environment: runs on the Database the caller hands over."""

from alembic import context

from vigila.store.engine import Database

db: Database = context.config.attributes["database"]

with db.engine.connect() as connection:
    # The SQLite begin hook must take the write lock for DDL too.
    connection.execution_options(vigila_write=True)
    context.configure(
        connection=connection,
        render_as_batch=db.dialect == "sqlite",  # SQLite alters tables by copying them
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
