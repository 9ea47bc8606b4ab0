"""Alembic environment: migrations run online against the URL the caller configured."""

import os
from typing import Any

from alembic import context
from sqlalchemy import Connection, create_engine, text

from schemas.tables import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or os.environ["DATABASE_URL"]


def _partitions(connection: Connection) -> set[str]:
    """The partitions of the partitioned tables: created by the maintenance job, not described in
    schemas/tables.py (whose tables are their parents), so `alembic check` leaves them out."""
    return set(connection.execute(text("SELECT relname FROM pg_class WHERE relispartition")).scalars())


engine = create_engine(url)
with engine.connect() as connection:
    partitions = _partitions(connection)
    connection.commit()  # the migrations' own transaction begins below: none may be open

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        return not (type_ == "table" and name in partitions)

    context.configure(connection=connection, target_metadata=metadata, include_name=include_name)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
