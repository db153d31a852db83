"""The production stack as written: docker-compose.yml, the Dockerfile and the scripts they mount.

Nothing is started; these read the files and check what would break a deployment.
"""

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from workflows import search_attributes

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

LONG_RUNNING = ("postgres", "temporal", "temporal-ui", "api", "worker")
APP_SERVICES = ("api", "worker")
PROVIDER_SECRETS = (
    "WINBACK_SENDGRID_API_KEY",
    "WINBACK_TWILIO_ACCOUNT_SID",
    "WINBACK_TWILIO_AUTH_TOKEN",
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment as a dict, whichever of the two compose forms it uses."""
    raw = service.get("environment") or {}
    if isinstance(raw, dict):
        return {k: None if v is None else str(v) for k, v in raw.items()}
    pairs = (item.partition("=") for item in raw)
    return {k: (v if sep else None) for k, sep, v in pairs}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in raw.items()}


def runs_script(service: dict[str, Any], script: str) -> bool:
    words = [*service.get("entrypoint", []), *service.get("command", [])]
    return any(str(word).endswith(script) for word in words)


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def test_every_part_of_the_stack_is_there(services: dict[str, dict[str, Any]]) -> None:
    assert set(LONG_RUNNING) <= services.keys()
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert services["api"]["command"] == ["winback", "api"]
    assert services["worker"]["command"] == ["winback", "worker"]
    for name in APP_SERVICES:
        assert services[name]["build"] == "."


def test_long_running_services_have_healthchecks_and_one_shots_are_awaited(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in LONG_RUNNING:
        test = services[name].get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"
        assert services[name].get("restart") == "unless-stopped", name

    awaited = {
        dependency
        for service in services.values()
        for dependency, condition in depends_on(service).items()
        if condition == "service_completed_successfully"
    }
    one_shots = services.keys() - set(LONG_RUNNING)
    assert one_shots == awaited, "a service is neither health-checked nor awaited to completion"
    for name in one_shots:
        assert services[name].get("restart", "no") == "no", f"one-shot {name} would loop"


def test_app_waits_for_a_healthy_database_and_temporal(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in APP_SERVICES:
        deps = depends_on(services[name])
        assert deps["postgres"] == "service_healthy", name
        assert deps["temporal"] == "service_healthy", name
    temporal = depends_on(services["temporal"])
    assert temporal["postgres"] == "service_healthy"
    assert depends_on(services["temporal-ui"])["temporal"] == "service_healthy"


def test_temporal_runs_on_postgres_after_its_schema_is_set_up(
    services: dict[str, dict[str, Any]],
) -> None:
    temporal = services["temporal"]
    temporal_env = env(temporal)
    assert temporal_env["DB"] == "postgres12"
    assert temporal_env["POSTGRES_SEEDS"] == "postgres"

    (schema_job,) = (s for s in services.values() if runs_script(s, "setup-schema.sh"))
    schema_name = next(name for name, s in services.items() if s is schema_job)
    assert depends_on(temporal)[schema_name] == "service_completed_successfully"
    assert depends_on(schema_job)["postgres"] == "service_healthy"
    # Tools and server from the same release, so the schema matches what the server expects.
    server_tag = temporal["image"].split(":", 1)[1]
    assert schema_job["image"] == f"temporalio/admin-tools:{server_tag}"


def test_search_attributes_the_workflows_upsert_are_registered_first(
    services: dict[str, dict[str, Any]],
) -> None:
    (setup_name,) = (n for n, s in services.items() if runs_script(s, "setup-namespace.sh"))
    registered = {}
    for pair in (env(services[setup_name])["WINBACK_SEARCH_ATTRIBUTES"] or "").split():
        name, _, kind = pair.partition("=")
        registered[name] = kind.lower()

    upserted = {key.name: key.indexed_value_type.name.lower() for key in search_attributes.ALL}
    assert {"WinbackRetailer", "WinbackStage", "WinbackCartValue"} <= upserted.keys()
    assert registered == upserted

    script = (ROOT / "deploy/temporal/setup-namespace.sh").read_text()
    assert "temporal operator search-attribute create" in script
    assert "temporal operator namespace create" in script
    assert env(services[setup_name])["TEMPORAL_ADDRESS"] == "temporal:7233"
    for name in APP_SERVICES:
        assert depends_on(services[name])[setup_name] == "service_completed_successfully"


def test_app_talks_to_postgres_and_temporal_inside_the_stack(
    services: dict[str, dict[str, Any]],
) -> None:
    api_env = env(services["api"])
    url = make_url(api_env["WINBACK_DATABASE_URL"] or "")
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "postgres"
    assert url.host in services
    assert url.database == "winback"
    assert url.database not in ("temporal", "temporal_visibility"), "app shares Temporal's db"
    assert api_env["WINBACK_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert api_env["WINBACK_API_HOST"] == "0.0.0.0"
    assert "8000:8000" in services["api"]["ports"]

    worker_env = env(services["worker"])
    for key in ("WINBACK_DATABASE_URL", "WINBACK_TEMPORAL_ADDRESS", "WINBACK_TASK_QUEUE"):
        assert worker_env[key] == api_env[key], key

    # The app database and its owner come from the init script mounted into postgres.
    mounts = dict(bind_mounts(services["postgres"]))
    (init_script,) = (s for s, t in mounts.items() if t.startswith("/docker-entrypoint-initdb.d/"))
    init_sql = (ROOT / init_script).read_text()
    assert re.search(r"CREATE DATABASE winback OWNER winback", init_sql)
    assert url.username == "winback"


def test_migrations_run_once_before_the_api_and_workers(
    services: dict[str, dict[str, Any]],
) -> None:
    migrate = services["migrate"]
    assert migrate["command"] == ["winback", "migrate"]
    assert migrate["build"] == "." and migrate["image"] == services["api"]["image"]
    assert migrate.get("restart", "no") == "no", "a one-shot that restarts never completes"
    assert depends_on(migrate)["postgres"] == "service_healthy"
    assert env(migrate)["WINBACK_DATABASE_URL"] == env(services["api"])["WINBACK_DATABASE_URL"]
    for name in APP_SERVICES:
        assert depends_on(services[name])["migrate"] == "service_completed_successfully", name


def test_the_image_ships_the_migrations() -> None:
    build_stage = dockerfile_instructions()
    copied = [args.split()[0] for keyword, args in build_stage if keyword == "COPY"]
    assert "migrations/" in copied
    # They travel inside the wheel the image installs, where `winback migrate` looks.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    assert "migrations*" in setuptools["packages"]["find"]["include"]
    assert (ROOT / "migrations/__init__.py").exists()
    assert (ROOT / "migrations/versions/__init__.py").exists()


def test_temporal_ui_points_at_the_server(services: dict[str, dict[str, Any]]) -> None:
    ui = services["temporal-ui"]
    assert env(ui)["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert "8080:8080" in ui["ports"]


def test_no_secret_is_written_into_the_file(services: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES:
        app_env = env(services[name])
        for key in PROVIDER_SECRETS:
            value = app_env[key]
            # Unset (passed through from the host) or an interpolation with an empty default.
            assert value is None or re.fullmatch(rf"\$\{{{key}(:?-)?\}}", value), (name, key)
        admin_token = app_env["WINBACK_ADMIN_TOKEN"] or ""
        assert re.fullmatch(r"\$\{WINBACK_ADMIN_TOKEN:\?[^}]*\}", admin_token), (
            "the admin token must come from the environment, with no default"
        )
        secrets_key = app_env["WINBACK_SECRETS_KEY"] or ""
        assert re.fullmatch(r"\$\{WINBACK_SECRETS_KEY:\?[^}]*\}", secrets_key), (
            "the key encrypting retailers' provider keys must come from the environment"
        )


def test_workers_scale_out(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert "ports" not in worker, "a fixed host port stops a second replica from starting"
    for name, service in services.items():
        assert "container_name" not in service, f"{name}: a fixed name blocks scaling and reuse"


def test_mounted_files_exist_and_data_persists(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    for name, service in services.items():
        for source, _ in bind_mounts(service):
            assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    postgres_volumes = [str(v) for v in services["postgres"]["volumes"]]
    assert "postgres-data:/var/lib/postgresql/data" in postgres_volumes
    assert "postgres-data" in compose["volumes"]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    pairs = []
    for statement in logical:
        keyword, _, args = statement.partition(" ")
        pairs.append((keyword.upper(), args.strip()))
    return pairs


def test_dockerfile_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    assert DOCKERFILE.exists()
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    final_stage = instructions[last_from:]

    assert final_stage[0][1].startswith("python:3.11-slim")
    users = [args for keyword, args in final_stage if keyword == "USER"]
    assert users, "the final stage has no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")

    (healthcheck,) = [args for keyword, args in final_stage if keyword == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    assert "urllib" in healthcheck

    (cmd,) = [args for keyword, args in final_stage if keyword == "CMD"]
    assert yaml.safe_load(cmd) == ["winback", "api"]


def test_setup_scripts_are_plain_sh() -> None:
    # The admin-tools image is Alpine: /bin/sh is busybox, and there is no bash.
    for script in sorted((ROOT / "deploy/temporal").glob("*.sh")):
        assert script.read_text().startswith("#!/bin/sh\n"), script.name
