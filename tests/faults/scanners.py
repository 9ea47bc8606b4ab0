"""Static checks of the source: credentials committed to the repository, and SQL built from input.

Both are written to fail: tests/faults/test_security.py feeds each one planted offenders first.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

# --- credentials --------------------------------------------------------------------------------

# The documented loopback-only defaults of the local stack and compose (README: "local/compose
# database passwords (loopback only)"), and nothing else.
ALLOWED_DEFAULTS = frozenset({"binance", "binance_api"})
# Dummy values of tests that never reach a server, each allowed in its own file only.
ALLOWED_TEST_DUMMIES = frozenset(
    {
        ("tests/integration/test_api_prices.py", "x"),  # a URL of a database that does not exist
        ("tests/unit/test_compose.py", "s3cret"),  # checks compose's variable substitution
    }
)

# Formats that are a credential wherever they appear.
_STRONG = [
    ("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("AWS access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}")),
]
# A name that says "secret", then = or :, then a value (quoted or bare, as in code, YAML, .env).
_ASSIGNMENT = re.compile(
    r"""(?ix)
    (?<![\w${])  # not inside ${VAR:-default}, whose default the URL check sees
    (?P<name>[a-z0-9_.-]*(?:api[_-]?key|api[_-]?secret|secret[_-]?key|secret|password|passwd|pwd|token|private[_-]?key))
    (?P<separator>["']?\s*(?::|=|:=)\s*)
    (?P<quote>["']?)(?P<value>[^\s"',;)}\]]*)
    """
)
# psql's variables (PASSWORD :'api_password'): the value comes from the environment.
_PSQL_VARIABLE = re.compile(r"\s+:$")
# user:password@ in a URL.
_URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://(?P<user>[^:/@\s'\"]+):(?P<password>[^@/\s'\"]+)@")
# A Binance API key or secret is 64 letters and digits.
_BINANCE_KEY = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9]{64}(?![A-Za-z0-9+/=_-])")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str
    text: str


def _is_reference(value: str, quoted: bool) -> bool:
    """A value that names where the secret comes from, rather than being one."""
    if value in ALLOWED_DEFAULTS or not re.search(r"[A-Za-z0-9]", value):
        return True  # a default, or no value at all (punctuation: the start of an expression)
    if "{" in value or value.startswith(("$", "%", ":", "<", "...", "*")):
        return True  # ${VAR}, {placeholder}, %s, psql's :'var', <your-key>
    # Unquoted in code: a variable, attribute or call (settings.password, os.environ[...]).
    return not quoted and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\[\]]*(\(.*)?", value) is not None


def _mixed(value: str) -> bool:
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


def find_credentials(text: str, path: str = "<text>") -> list[Finding]:
    findings = []
    for number, line in enumerate(text.splitlines(), start=1):
        for what, pattern in _STRONG:
            if pattern.search(line):
                findings.append(Finding(path, number, what, line.strip()[:200]))
        for match in _ASSIGNMENT.finditer(line):
            value, quoted = match["value"], bool(match["quote"])
            if quoted and _PSQL_VARIABLE.search(match["separator"]):
                continue
            if not _is_reference(value, quoted) and (path, value) not in ALLOWED_TEST_DUMMIES:
                findings.append(Finding(path, number, f"literal {match['name']}", line.strip()[:200]))
        for match in _URL_CREDENTIALS.finditer(line):
            password = match["password"]
            if not _is_reference(password, quoted=True) and (path, password) not in ALLOWED_TEST_DUMMIES:
                findings.append(Finding(path, number, "password in a URL", line.strip()[:200]))
        for match in _BINANCE_KEY.finditer(line):
            # Hex digests (lock files, hashes) are 64 characters too, but never mixed case.
            token = match.group()
            if _mixed(token) and token != token.lower() and token != token.upper():
                findings.append(Finding(path, number, "64-character key", line.strip()[:200]))
    return findings


# --- SQL built from input -----------------------------------------------------------------------

# Calls whose argument is SQL text: DB-API cursors, psycopg2's helpers, SQLAlchemy's raw SQL.
SQL_SINKS = {
    "execute": 0,
    "executemany": 0,
    "exec_driver_sql": 0,
    "copy_expert": 0,
    "mogrify": 0,
    "text": 0,
    "literal_column": 0,
    "execute_values": 1,
    "execute_batch": 1,
    "SQL": 0,
}
_LIBRARY_FUNCTIONS = {"text", "literal_column", "SQL"}
# psycopg2.sql's quoting composables: what they wrap is escaped, so any value is safe in them.
_QUOTING = {"Identifier", "Literal", "Placeholder"}


@dataclass(frozen=True)
class SqlFinding:
    path: str
    line: int
    code: str


class _Module:
    """Module-level names bound once to constant-derived values (SQL fragments, statement maps),
    and, given the repository's root, the project modules it imports by name (`from pkg import
    mod`), whose constants count as constants here too (mod.COLUMNS)."""

    def __init__(self, tree: ast.Module, root: Path | None = None, seen: frozenset[Path] = frozenset()) -> None:
        self.constants: dict[str, ast.expr] = {}
        self.functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        self.imported: dict[str, _Module] = {}
        assigned: dict[str, int] = {}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and root is not None and node.module and not node.level:
                for alias in node.names:
                    path = root.joinpath(*node.module.split("."), f"{alias.name}.py")
                    if path.is_file() and path not in seen:
                        imported = _Module(ast.parse(path.read_text()), root, seen | {path})
                        self.imported[alias.asname or alias.name] = imported
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            else:
                continue
            for target in targets:
                if isinstance(target, ast.Name):
                    assigned[target.id] = assigned.get(target.id, 0) + 1
                    self.constants[target.id] = value
        for name, count in assigned.items():
            if count > 1:
                del self.constants[name]


class _Checker:
    def __init__(self, module: _Module, function: ast.FunctionDef | ast.AsyncFunctionDef | None) -> None:
        self.module = module
        self.locals: dict[str, list[ast.expr]] = {}
        self.loop_sources: dict[str, ast.expr] = {}
        if function is not None:
            for node in ast.walk(function):
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        for name in ast.walk(target):
                            if isinstance(name, ast.Name):
                                self.locals.setdefault(name.id, []).append(node.value)
                elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
                    if node.value is not None:
                        self.locals.setdefault(node.target.id, []).append(node.value)
                elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
                    for name in ast.walk(node.target):
                        if isinstance(name, ast.Name):
                            self.loop_sources[name.id] = node.iter

    def constant(self, node: ast.expr, depth: int = 0) -> bool:
        """Whether the value is built only from literals and module constants (no input)."""
        if depth > 20:
            return False
        deeper = depth + 1
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.JoinedStr):
            return all(self.constant(part, deeper) for part in node.values)
        if isinstance(node, ast.FormattedValue):
            return self.constant(node.value, deeper)
        if isinstance(node, ast.BinOp):
            return self.constant(node.left, deeper) and self.constant(node.right, deeper)
        if isinstance(node, ast.Dict):
            return all(self.constant(v, deeper) for v in [*node.keys, *node.values] if v is not None)
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            return all(self.constant(element, deeper) for element in node.elts)
        if isinstance(node, ast.Subscript):
            # Whatever the key, an element of a constant container is one of its constants.
            return self.constant(node.value, deeper)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            # A constant of an imported project module, judged there.
            imported = self.module.imported.get(node.value.id)
            if imported is None:
                return False
            value = imported.constants.get(node.attr)
            return value is not None and _Checker(imported, None).constant(value, deeper)
        if isinstance(node, ast.Name):
            if node.id in self.loop_sources:
                return self.constant(self.loop_sources[node.id], deeper)
            if node.id in self.locals:
                return all(self.constant(value, deeper) for value in self.locals[node.id])
            value = self.module.constants.get(node.id)
            return value is not None and self.constant(value, deeper)
        if isinstance(node, ast.Call):
            arguments = [*node.args, *(keyword.value for keyword in node.keywords)]
            if not all(self.constant(argument, deeper) for argument in arguments):
                return False
            function = node.func
            if isinstance(function, ast.Attribute):  # "...".format(...), CONSTANTS.items(), ...
                return self.constant(function.value, deeper)
            # A module function given only constants (e.g. one that renders a SQL fragment).
            return isinstance(function, ast.Name) and function.id in self.module.functions
        return False

    def safe_sql(self, node: ast.expr, depth: int = 0) -> bool:
        """Whether SQL text is safe: constant, or composed by psycopg2.sql with quoting."""
        if self.constant(node):
            return True
        if depth > 20:
            return False
        if isinstance(node, ast.Name):
            values = self.locals.get(node.id)
            if values is None and node.id in self.module.constants:
                # A module-level statement, bound once (e.g. a SQLAlchemy select built at import).
                values = [self.module.constants[node.id]]
            if values is None:  # a parameter: a query object handed in, or a string from anywhere
                return False
            return all(self.safe_sql(value, depth + 1) or not _builds_text(value) for value in values)
        if isinstance(node, ast.Call):
            name = _call_name(node.func)
            if name == "format" and isinstance(node.func, ast.Attribute) and _is_sql_composable(node.func.value, self):
                return all(self._quoted(argument) for argument in [*node.args, *(k.value for k in node.keywords)])
            return not _builds_text(node)
        return not _builds_text(node)

    def _quoted(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Call) and _call_name(node.func) in _QUOTING:
            return True
        return isinstance(node, ast.Call) and _call_name(node.func) == "SQL" and self.constant(node.args[0])


def _is_sql_call(function: ast.expr) -> bool:
    """text(), literal_column() and SQL() are SQL only as the library's functions (sqlalchemy.text,
    sql.SQL), not as any object's method of that name (e.g. a request's params.text())."""
    if _call_name(function) not in _LIBRARY_FUNCTIONS:
        return True
    if isinstance(function, ast.Name):
        return True
    return (
        isinstance(function, ast.Attribute)
        and isinstance(function.value, ast.Name)
        and function.value.id in ("sqlalchemy", "sa", "sql", "expression")
    )


def _call_name(function: ast.expr) -> str:
    if isinstance(function, ast.Attribute):
        return function.attr
    return function.id if isinstance(function, ast.Name) else ""


def _is_sql_composable(node: ast.expr, checker: _Checker) -> bool:
    """sql.SQL("constant") itself, or a local name bound only to such."""
    if isinstance(node, ast.Call) and _call_name(node.func) == "SQL":
        return bool(node.args) and checker.constant(node.args[0])
    if isinstance(node, ast.Name) and node.id in checker.locals:
        return all(_is_sql_composable(value, checker) for value in checker.locals[node.id])
    return False


def _builds_text(node: ast.expr) -> bool:
    """An expression that makes a string: an f-string, + or % on strings, or str.format()."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return True
    return isinstance(node, ast.Call) and _call_name(node.func) in ("format", "join")


def find_sql_built_from_input(source: str, path: str = "<source>", root: Path | None = None) -> list[SqlFinding]:
    """SQL built from anything but constants. With `root`, constants of the project modules the
    source imports by name count as constants."""
    tree = ast.parse(source)
    module = _Module(tree, root)
    findings: list[SqlFinding] = []
    functions: list[ast.FunctionDef | ast.AsyncFunctionDef | None] = [None]
    functions += [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    seen: set[int] = set()
    for function in functions:
        checker = _Checker(module, function)
        for node in ast.walk(function if function is not None else tree):
            if not isinstance(node, ast.Call) or id(node) in seen:
                continue
            position = SQL_SINKS.get(_call_name(node.func))
            if position is None or len(node.args) <= position or not _is_sql_call(node.func):
                continue
            if function is None and _inside_function(tree, node):
                continue  # checked with its function's local names
            seen.add(id(node))
            if not checker.safe_sql(node.args[position]):
                findings.append(SqlFinding(path, node.lineno, ast.get_source_segment(source, node) or ""))
    return findings


def _inside_function(tree: ast.Module, target: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
            child is target for child in ast.walk(node)
        ):
            return True
    return False


def python_files(root: Path, packages: tuple[str, ...]) -> list[Path]:
    return sorted(path for package in packages for path in (root / package).rglob("*.py"))
