"""The Alembic migrations create exactly the tables of schemas/tables.py, and undo cleanly."""

import subprocess
import sys
from contextlib import closing
from pathlib import Path

import psycopg2
import pytest

from tests.conftest import libpq_dsn

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def alembic(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO / "schemas/alembic.ini"), *args],
        env={"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )


def tables(database_url: str) -> set[str]:
    with closing(psycopg2.connect(libpq_dsn(database_url))) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in cursor.fetchall()}


def test_migrations_match_the_table_definitions_and_downgrade(database: dict[str, str]) -> None:
    from schemas.tables import metadata

    upgraded = alembic(database["owner"], "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    assert tables(database["owner"]) == {*metadata.tables, "alembic_version"}
    # `alembic check` compares the migrated database with schemas/tables.py: no drift allowed.
    checked = alembic(database["owner"], "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    downgraded = alembic(database["owner"], "downgrade", "base")
    assert downgraded.returncode == 0, downgraded.stderr
    assert tables(database["owner"]) == {"alembic_version"}
