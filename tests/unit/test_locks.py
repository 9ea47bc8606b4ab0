"""requirements/*.lock pin every dependency pyproject.toml names, group by group.

The images install only their service's lock (Dockerfile) and setup.sh installs dev.lock, so a
dependency added to pyproject.toml without running scripts/lock.sh would be missing there."""

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]["name"]
GROUPS = sorted(PYPROJECT["project"]["optional-dependencies"])


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(group: str) -> set[str]:
    """Every distribution `group` needs directly, following the project's own extras."""
    names: set[str] = set()
    pending = [*PYPROJECT["project"]["dependencies"], *PYPROJECT["project"]["optional-dependencies"][group]]
    seen_extras = {group}
    while pending:
        requirement = pending.pop()
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
        if canonical(name) == canonical(PROJECT):
            extras = re.search(r"\[(.*)\]", requirement)
            for extra in extras.group(1).split(",") if extras else []:
                if extra.strip() not in seen_extras:
                    seen_extras.add(extra.strip())
                    pending.extend(PYPROJECT["project"]["optional-dependencies"][extra.strip()])
            continue
        names.add(canonical(name))
    return names


def pinned(group: str) -> dict[str, str]:
    lock = REPO / "requirements" / f"{group}.lock"
    pins = {}
    for line in lock.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\-]+)==([^\s#;]+)", line):
            pins[canonical(match.group(1))] = match.group(2)
    return pins


@pytest.mark.parametrize("group", GROUPS)
def test_every_dependency_of_a_group_is_pinned_in_its_lock(group: str) -> None:
    missing = requirement_names(group) - set(pinned(group))
    assert not missing, f"run scripts/lock.sh: requirements/{group}.lock lacks {sorted(missing)}"


def test_every_image_has_a_lock() -> None:
    compose = (REPO / "docker-compose.yml").read_text()
    for service in re.findall(r"SERVICE: ([\w-]+)", compose):
        assert (REPO / "requirements" / f"{service}.lock").exists(), service
