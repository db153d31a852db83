"""One settings class, read from the environment (prefix ``WINBACK_``) and ``.env``.

Defaults run the embedded stack: a local Temporal dev server, SQLite, and the outbox in place
of SendGrid and Twilio. Secrets come only from the environment and are never logged.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_ADMIN_TOKEN = "dev-admin-token"  # the documented dev default, refused outside `winback dev`


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WINBACK_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".winback")
    database_url: str = "sqlite+aiosqlite:///.winback/winback.db"
    database_busy_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=300,
        description="SQLite: how long a write waits for another's lock before it fails; the API "
        "then answers 503 with Retry-After, never 500.",
    )

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "winback"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_base_url: str = "http://localhost:8000"

    admin_token: SecretStr = SecretStr(DEV_ADMIN_TOKEN)
    embedded_dev: bool = Field(
        default=False,
        description="Set by ``winback dev``: the embedded stack on one machine. Only then is "
        "the default admin token accepted, and retailers' URLs may point at loopback.",
    )
    allow_loopback_urls: bool = Field(
        default=False,
        description="Let retailers' outbound URLs (the nudge webhook) resolve to 127.0.0.1/::1, "
        "for the embedded stack and tests. Private, link-local and metadata addresses are "
        "refused whatever this says.",
    )
    unsubscribe_secret: SecretStr | None = Field(
        default=None,
        description="Signs the unsubscribe links in messages. Unset: a fixed dev secret, with a "
        "warning (anyone could mint links: set it anywhere but your laptop).",
    )
    unsubscribe_old_secrets: list[SecretStr] = Field(
        default_factory=list,
        description="Earlier unsubscribe secrets, still accepted so links already sent keep "
        'working through a rotation (JSON list: ["old-secret"]).',
    )
    survey_secret: SecretStr | None = Field(
        default=None,
        description="Signs the survey links Winback sends (its own secret, like unsubscribe "
        "links). Unset: a fixed dev secret, with a warning.",
    )
    survey_old_secrets: list[SecretStr] = Field(
        default_factory=list,
        description="Earlier survey secrets, still accepted through a rotation (JSON list).",
    )
    survey_link_days: int = Field(
        default=30, ge=1, le=365, description="How long a survey link can be answered."
    )
    api_metrics_port: int | None = Field(
        default=9465,
        description="The API's Prometheus metrics, on their own port (never the API's). None: off.",
    )
    max_body_bytes: int = Field(
        default=1_000_000, description="Larger request bodies are refused with 413."
    )
    rate_limit_per_key: str = Field(
        default="600/minute", description="Per API key, agent token or signed webhook sender."
    )
    rate_limit_per_address: str = Field(
        default="1200/minute", description="Per client address, whoever it claims to be."
    )
    secrets_key: SecretStr | None = Field(
        default=None,
        description="A Fernet key (``Fernet.generate_key()``) that encrypts retailers' provider "
        "secrets at rest. Unset: a fixed dev key, with a warning.",
    )

    privacy_hash_key: SecretStr | None = Field(
        default=None,
        description="Keys the digest that the suppression list keeps of an erased shopper's "
        "address. Unset: derived from the secrets key. Never change it once shoppers are erased.",
    )

    sendgrid_api_key: SecretStr | None = None
    sendgrid_from_email: str = "winback@example.com"
    sendgrid_base_url: str = "https://api.sendgrid.com"
    # A SendGrid send interrupted by a crash waits this long for the event webhook to report
    # it (by the message id in custom_args) before it is sent again.
    send_event_grace_seconds: float = 60.0
    sendgrid_webhook_public_key: str | None = Field(
        default=None,
        description="The SendGrid Event Webhook verification key (base64 DER as SendGrid shows "
        "it, or PEM) for retailers that have not set their own. Unset: their events are refused.",
    )
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    twilio_base_url: str | None = Field(
        default=None, description="Override of Twilio's API host, for tests against a fake."
    )

    worker_metrics_port: int | None = 9464
    worker_max_cached_workflows: int = Field(
        default=1000,
        ge=0,
        description="Workflows a worker keeps in memory between their tasks (the sticky "
        "cache). Bounds the worker's memory (about 0.1 MB each, see bench/README.md); a cart "
        "evicted from it is replayed from its history at its next task. 0: no cache.",
    )
    worker_max_concurrent_workflow_tasks: int = Field(
        default=8,
        ge=2,
        le=200,
        description="Workflow tasks a worker runs at once. They are CPU-bound Python sharing "
        "one GIL, so more only makes each take longer (and trip the SDK's 2 s deadlock "
        "detector under load) instead of queueing on the server: at the SDK's default of 100 "
        "on a loaded 2-core machine each took over 10 s, timed out and was run again (1,387 "
        "times in one fault benchmark). The rest wait on the server, where no timeout runs.",
    )
    worker_max_concurrent_activities: int = Field(
        default=10,
        ge=1,
        le=200,
        description="Activities a worker runs at once (database reads, provider sends). Kept "
        "below the database pool (15 connections on SQLite, 30 on PostgreSQL): past it, a burst "
        "of sends waited 30 s for a connection, failed and backed off, and the cadence fell "
        "minutes behind; below it the rest wait in Temporal's task queue, where no timeout runs.",
    )
    worker_max_concurrent_local_activities: int = Field(
        default=4,
        ge=1,
        le=200,
        description="Local activities a worker runs at once (a cart's agent task opened, and "
        "closed with its call recorded, inside the workflow task that decides it). Each holds "
        "its workflow task's slot and a database connection while it runs; with "
        "``worker_max_concurrent_activities`` it stays below the pool (15 on SQLite): at the "
        "SDK's default of 100 the two together could ask for 18.",
    )
    worker_strict_sandbox: bool = Field(
        default=False,
        description="Re-import the workflow modules for every workflow instance, so the "
        "sandbox checks their own calls too. About 4x the CPU per cart; for chasing a "
        "suspected non-determinism, not for production.",
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1",
        description="Where the worker's Prometheus metrics listen (``0.0.0.0`` for a scraper "
        "on another host, e.g. in a container).",
    )
    log_format: Literal["json", "text"] | None = Field(
        default=None,
        description="JSON lines with workflow, run, retailer and cart ids (``winback.platform."
        "logs``), or ``text`` for a terminal. Default: ``text`` for ``winback dev`` (someone "
        "reads it), ``json`` for ``winback api`` and ``winback worker`` (a collector does).",
    )
    otel_exporter: Literal["none", "console", "otlp"] = Field(
        default="none",
        description="OpenTelemetry traces from API requests through Temporal into workflows and "
        "activities: off, on stdout, or OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT``.",
    )
    otel_service_name: str | None = Field(
        default=None, description="The traces' service name (default winback-api/-worker)."
    )
    cart_relay_concurrency: int = Field(
        default=8,
        ge=1,
        le=256,
        description="How many tasks of each API process start cart workflows off the request "
        "path (``winback.carts.relay``); each sends up to 16 starts at once.",
    )
    cart_relay_max_queued: int = Field(
        default=10_000,
        ge=1,
        description="Carts an API process holds waiting for their workflow start; beyond that a "
        "new cart's start is left to the worker's sweep (``redrive_every_seconds``).",
    )
    redrive_every_seconds: float | None = Field(
        default=60,
        description="How often each worker tells cart workflows the changes they missed while "
        "Temporal was unreachable, and marks idle carts abandoned (0 or unset: never; carts "
        "are then marked when their first follow-up is due).",
    )

    client_rate_limit_per_key: str = Field(
        default="1200/minute",
        description="Requests a publishable key may make to /v1/client (``limits`` notation).",
    )
    client_rate_limit_per_address: str = Field(
        default="120/minute", description="Requests one client address may make with one key."
    )
    demo_store: bool = Field(
        default=False,
        description="Serve the demo storefront at /demo/shop (``winback dev`` turns it on).",
    )

    @field_validator("sendgrid_webhook_public_key")
    @classmethod
    def _sendgrid_key(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from winback.platform.sendgrid_keys import normalize_sendgrid_public_key

        return normalize_sendgrid_public_key(value)

    @field_validator("secrets_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from cryptography.fernet import Fernet

            try:
                Fernet(value.get_secret_value().encode())
            except ValueError:
                raise ValueError(
                    "must be a Fernet key: 32 url-safe base64-encoded bytes "
                    "(python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())')"
                ) from None
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
