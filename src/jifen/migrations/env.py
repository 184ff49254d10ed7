from typing import cast

from alembic import context
from sqlalchemy import pool

from jifen.db import make_engine
from jifen.models import metadata

config = context.config


def run_migrations_online() -> None:
    engine = make_engine(cast(str, config.get_main_option("sqlalchemy.url")), poolclass=pool.NullPool)  # (set by jifen.migrate)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
