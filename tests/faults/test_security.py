"""No credentials in the repository, and SQL only with bound parameters (static checks).

Each check is first shown planted offenders, so that a scanner that finds nothing can't pass by
being blind. The other security checks need the running pipeline and are in
test_pipeline_faults.py: the api's role cannot write, the api's request limits, and no password
in any log of the fault runs.
"""

import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.faults.scanners import find_credentials, find_sql_built_from_input, python_files

pytestmark = pytest.mark.faults

SERVICE_PACKAGES = ("producer", "consumer", "api", "bootstrap")


def repository_files() -> list[str]:
    """What is committed, and what would be with `git add -A` (untracked, not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted({name for name in listed.split("\0") if name and (REPO / name).is_file()})


# Planted offenders, stored reversed and in two pieces: written out, this very file would fail the
# scan of the repository. The Binance key pair among them is random, never issued.
PLANTED_CREDENTIALS = {
    "binance key in code": (
        '"A8hEud19uJ7y41ocItu6yPICwgIuM0wsvz2EKa6rO' + 'sFWlH4kHNV5DS9vm6EZUPmv" = YEK_IPA_ECNANIB'
    )[::-1],
    "binance secret in a notebook": (
        '""\\j0jTAf5H7A6MqqvbAX56NVlCnIjZU3e1PiNY5R' + '3egM4jZP7AjHVjKdYJSdmtPqhN"\\ = terces_ipa"'
    )[::-1],
    "bare 64-character key": ("j0jTAf5H7A6MqqvbAX56NVlCnIjZU3e1Pi" + "NY5R3egM4jZP7AjHVjKdYJSdmtPqhN :yek")[::-1],
    "password in YAML": ('"2retnuh2retn' + 'uh" :drowssap')[::-1],
    "password in .env": ("yrettab-esroh-tc" + "erroc=DROWSSAP_GP")[::-1],
    "password in a URL": ("ecnanib/2345:bd@terc3Sr3puS:ecnanib//:2" + "gpocysp+lqsergtsop=LRU_ESABATAD_REMUSNOC")[::-1],
    "private key": ("-----YEK ETAVIR" + "P ASR NIGEB-----")[::-1],
    "AWS key": ("ELPMAXE7NNDOFSOIAIKA" + " = di_yek_ssecca_swa")[::-1],
    "token": ('"9876543210JIHGFEDCBAjihgfedc' + 'ba9876543210_phg"=NEKOT_BUHTIG')[::-1],
}
ALLOWED_LINES = [
    "PG_PASSWORD=binance",
    "PG_API_PASSWORD=binance_api",
    "API_DATABASE_URL: postgresql+psycopg2://binance_api:${PG_API_PASSWORD:-binance_api}@postgres:5432/binance",
    'dsn = f"host=127.0.0.1 user=binance password={self.owner_password}"',
    "password = settings.database_password",
    "ALTER ROLE :\"api\" WITH LOGIN PASSWORD :'api_password';",
    'sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"',  # a hex digest
]


@pytest.mark.parametrize("name", sorted(PLANTED_CREDENTIALS))
def test_the_credential_scan_finds_planted_credentials(name: str) -> None:
    assert find_credentials(PLANTED_CREDENTIALS[name]), f"the scan missed a {name}"


def test_the_credential_scan_allows_the_documented_defaults_and_references() -> None:
    for line in ALLOWED_LINES:
        assert find_credentials(line) == [], line


def test_no_credentials_in_the_repository() -> None:
    files = repository_files()
    assert len(files) > 50, "git listed too few files to be this repository"
    findings = []
    scanned = 0
    for name in files:
        data = (REPO / name).read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary (images): no text credential to find
        scanned += 1
        findings += find_credentials(data.decode(errors="replace"), name)
    assert scanned > 50
    assert not findings, "\n".join(f"{f.path}:{f.line}: {f.what}: {f.text}" for f in findings)


PLANTED_SQL = {
    "f-string": """
        def price(cursor, symbol):
            cursor.execute(f"SELECT price FROM trades WHERE symbol = '{symbol}'")
    """,
    "% formatting": """
        def price(cursor, symbol):
            cursor.execute("SELECT price FROM trades WHERE symbol = '%s'" % symbol)
    """,
    "concatenation": """
        def price(cursor, symbol):
            cursor.execute("SELECT price FROM trades WHERE symbol = '" + symbol + "'")
    """,
    "str.format": """
        def price(cursor, symbol):
            cursor.execute("SELECT price FROM trades WHERE symbol = '{}'".format(symbol))
    """,
    "built first": """
        def price(cursor, symbol):
            statement = f"SELECT price FROM trades WHERE symbol = '{symbol}'"
            cursor.execute(statement)
    """,
    "sqlalchemy text": """
        from sqlalchemy import text
        async def price(connection, symbol):
            return await connection.execute(text(f"SELECT price FROM trades WHERE symbol = '{symbol}'"))
    """,
    "execute_values": """
        def store(cursor, table, rows):
            execute_values(cursor, f"INSERT INTO {table} VALUES %s", rows)
    """,
    "module-level text from the environment": """
        import os
        _SELECT = f"SELECT price FROM {os.environ['TABLE']}"
        def price(cursor):
            cursor.execute(_SELECT)
    """,
    "sql.SQL of input": """
        def grant(cursor, role):
            cursor.execute(sql.SQL("GRANT SELECT ON trades TO {}").format(sql.SQL(role)))
    """,
}
ALLOWED_SQL = """
    from psycopg2 import sql
    _TABLE = "trades"
    _SELECT = f"SELECT price FROM {_TABLE} WHERE symbol = %s"
    _STATEMENTS = {"select_price": _SELECT}

    def price(cursor, symbol):
        cursor.execute(_SELECT, (symbol,))
        cursor.execute("SELECT price FROM trades WHERE symbol = %(symbol)s", {"symbol": symbol})
        for name, statement in _STATEMENTS.items():
            cursor.execute(f"PREPARE {name} AS {statement}")

    def grant(cursor, role):
        statement = sql.SQL("GRANT SELECT ON trades TO {role}")
        cursor.execute(statement.format(role=sql.Identifier(role)))

    async def latest(connection, symbol):
        query = select(trades.c.price).where(trades.c.symbol == symbol)
        return await connection.execute(query)

    _OLDEST = select(trades.c.price).order_by(trades.c.trade_id).limit(1)

    async def oldest(connection):
        return await connection.execute(_OLDEST, {"symbol": "BTCUSDT"})
"""


@pytest.mark.parametrize("name", sorted(PLANTED_SQL))
def test_the_sql_scan_finds_sql_built_from_input(name: str) -> None:
    assert find_sql_built_from_input(textwrap.dedent(PLANTED_SQL[name])), f"the scan missed SQL built by {name}"


def test_the_sql_scan_allows_constants_bound_parameters_and_composition() -> None:
    assert find_sql_built_from_input(textwrap.dedent(ALLOWED_SQL)) == []


def test_the_sql_scan_follows_constants_into_imported_project_modules(tmp_path: Path) -> None:
    package = tmp_path / "service"
    package.mkdir()
    (package / "columns.py").write_text(
        'import os\nCOLUMNS = "symbol, price"\nFROM_ENV = os.environ["COLUMNS"]\nSTATEMENT = f"COPY t ({COLUMNS})"\n'
    )
    source = textwrap.dedent(
        """
        from service import columns

        def copy(cursor, data):
            cursor.copy_expert(f"COPY t ({columns.COLUMNS}) FROM STDIN", data)
            cursor.copy_expert(columns.STATEMENT + " FROM STDIN", data)

        def copy_from_env(cursor, data):
            cursor.copy_expert(f"COPY t ({columns.FROM_ENV}) FROM STDIN", data)
        """
    )
    findings = find_sql_built_from_input(source, "service/copy.py", tmp_path)
    assert [finding.code for finding in findings] == [
        'cursor.copy_expert(f"COPY t ({columns.FROM_ENV}) FROM STDIN", data)'
    ]
    # Without the root the imported module is unknown, so nothing of it counts as constant.
    assert len(find_sql_built_from_input(source, "service/copy.py")) == 3


def test_services_build_sql_only_from_constants_and_bind_their_parameters() -> None:
    files = python_files(REPO, SERVICE_PACKAGES)
    assert len(files) > 20
    findings = []
    for path in files:
        findings += find_sql_built_from_input(path.read_text(), str(path.relative_to(REPO)), REPO)
    assert not findings, "\n".join(f"{f.path}:{f.line}: {f.code}" for f in findings)
