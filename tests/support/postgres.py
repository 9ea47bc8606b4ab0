"""A throwaway PostgreSQL cluster of a test's own, so stopping it harms no one else.

The shared test stack (scripts/stack.sh, port 25432) must never be stopped by a test: other
tests use it at the same time. A cluster here costs about 1.5 s of initdb and starts or stops in
about 0.1 s, with fsync off.
"""

from __future__ import annotations

import glob
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

from tests.conftest import free_port


class PrivatePostgres:
    """initdb into /tmp, run on a free loopback port; `remove()` deletes it all.

    With `passwords=True`, TCP logins need a password (scram-sha-256, as the real stack's do) and
    the superuser gets a random one; the Unix socket stays trusted for the test's own admin work.
    """

    def __init__(self, passwords: bool = False) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        assert binaries, "PostgreSQL server binaries are missing (scripts/setup.sh installs them)"
        self.bin = Path(binaries[-1])
        self.port = free_port()
        self.data = Path(tempfile.mkdtemp(prefix="test-pg-", dir="/tmp"))
        self.log_path = self.data / "log"
        shutil.chown(self.data, "postgres", "postgres")
        auth = ["--auth-local=trust", "--auth-host=scram-sha-256"] if passwords else ["--auth=trust"]
        self._as_postgres(self.bin / "initdb", "-D", str(self.data), "-U", "postgres", *auth)
        self.superuser_password = secrets.token_hex(16) if passwords else None
        self._password_set = False
        credentials = f"postgres:{self.superuser_password}" if passwords else "postgres"
        self.url = f"postgresql+psycopg2://{credentials}@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *command: str | Path) -> None:
        # initdb and postgres refuse to run as root.
        subprocess.run(["runuser", "-u", "postgres", "--", *map(str, command)], check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            self.bin / "pg_ctl", "-D", str(self.data), "-o", options, "-w", "-l", str(self.log_path), "start"
        )
        if self.superuser_password is not None and not self._password_set:
            self.create_login_role("postgres", self.superuser_password, exists=True)
            self._password_set = True

    def stop(self) -> None:
        self._as_postgres(self.bin / "pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        stop = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
        subprocess.run(["runuser", "-u", "postgres", "--", *stop], capture_output=True)
        shutil.rmtree(self.data, ignore_errors=True)

    def admin(self, database: str = "postgres") -> Any:
        """A superuser connection over the Unix socket (trusted), autocommit."""
        connection = psycopg2.connect(host="/tmp", port=self.port, user="postgres", dbname=database)
        connection.autocommit = True
        return connection

    def create_login_role(self, name: str, password: str, exists: bool = False) -> None:
        with self.admin() as connection, connection.cursor() as cursor:
            verb = sql.SQL("ALTER" if exists else "CREATE")
            # The password is bound as a literal by psycopg2, never pasted into the statement.
            statement = sql.SQL("{} ROLE {} WITH LOGIN PASSWORD %s").format(verb, sql.Identifier(name))
            cursor.execute(statement, (password,))
        connection.close()

    def create_database(self, name: str, owner: str) -> None:
        connection = self.admin()
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)))
        connection.close()
