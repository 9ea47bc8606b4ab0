"""Alembic environment: migrations run online against the URL the caller configured."""

import os

from alembic import context
from sqlalchemy import create_engine

from schemas.tables import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or os.environ["DATABASE_URL"]

engine = create_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
