"""Process settings, read once from the environment (and an optional `.env` file)."""

import secrets
from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DEVELOPMENT_KEY = secrets.token_urlsafe(32)


class Settings(BaseSettings):
    """Every knob the server has; each one is an environment variable `CLIENTDESK_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="CLIENTDESK_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite+aiosqlite:///./clientdesk.db",
        validation_alias=AliasChoices("DATABASE_URL", "CLIENTDESK_DATABASE_URL"),
        description="SQLAlchemy async URL; PostgreSQL in production (postgresql+asyncpg://…).",
    )
    environment: Literal["development", "production"] = "development"
    graphiql: bool | None = Field(
        default=None, description="Serve GraphiQL on GET /graphql (default: in development only)."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    db_pool_size: int = Field(
        default=20,
        description="PostgreSQL connections each server process keeps; a request holds one "
        "while it runs, and requests beyond wait for one.",
    )
    db_max_overflow: int = Field(
        default=0,
        description="Extra connections opened under load and closed when returned (a new "
        "connection costs more than a wait for a pooled one: keep 0 unless bursts need it).",
    )
    db_statement_timeout_ms: int = 15_000
    default_language: str = Field(
        default="en", description="Language shown to clients whose language has no translation."
    )
    translations: list[str] = Field(
        default=["en", "de", "fr", "es", "it", "nl", "pl", "pt", "pt-BR", "ja", "ar"],
        description="Languages the client cabinet is translated into (BCP 47 tags).",
    )
    password_min_score: int = Field(
        default=3, ge=0, le=4, description="zxcvbn score (0-4) a client password needs."
    )
    password_hash_time_cost: int = Field(
        default=3, ge=1, le=20, description="argon2id passes (RFC 9106 low-memory profile: 3)."
    )
    password_hash_memory_kib: int = Field(
        default=65_536, ge=1_024, le=4_194_304, description="argon2id memory per hash, KiB."
    )
    password_hash_parallelism: int = Field(
        default=4, ge=1, le=16, description="argon2id lanes per hash."
    )
    cabinet_base_url: str = Field(
        default="http://127.0.0.1:8000/cabinet",
        description="The client cabinet's address; links in e-mails point there.",
    )
    set_password_link_hours: int = Field(
        default=72, description="How long a set-password link from a login e-mail works."
    )
    deleted_retention_days: int = Field(
        default=30,
        ge=1,
        description="How long a deleted client can be restored (clientsRestore) before it is "
        "purged for good and its login is free again.",
    )
    jobs_in_process: bool | None = Field(
        default=None,
        description="Run the job worker inside `clientdesk serve` (default: on SQLite only, "
        "whose queue is in memory; on PostgreSQL run `clientdesk worker`).",
    )
    bulk_job_chunk: int = Field(
        default=500, ge=1, le=5_000, description="Clients a bulk job changes per transaction."
    )
    bulk_job_parallel: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Chunks of one bulk job in flight at once, across the workers (a "
        "deletion goes one chunk at a time).",
    )
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Literal["none", "starttls", "ssl"] = "none"
    mail_from: str = "Clientdesk <no-reply@clientdesk.test>"
    mail_sender: bool = Field(
        default=True, description="Deliver the outbox from the server processes."
    )
    mail_poll_seconds: float = 5.0
    mail_max_attempts: int = 8
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs cabinet (impersonation) tokens; the same on every replica. "
        "Required in production; in development a random key per process is used.",
    )
    impersonation_minutes: int = Field(
        default=15, ge=1, le=240, description="Lifetime of an 'In cabinet' token."
    )
    redis_url: str | None = Field(
        default=None, description="Redis for shared fast state (rate limits); else the database."
    )
    redis_key_prefix: str = Field(
        default="clientdesk:",
        description="Prefix of every Redis key (for several deployments on one Redis).",
    )
    rate_limit_points_per_minute: int = Field(
        default=1_000,
        ge=0,
        description="Each token's budget: a query costs a point per 100 nodes (at least 1), a "
        "mutation field 10; 0 turns the limit off.",
    )
    staff_rate_limit_points_per_minute: int = Field(
        default=3_000,
        ge=0,
        description="Each staff user's budget across all their tokens (a fresh token does not "
        "escape it); 0 turns this one off (and a token budget of 0 both).",
    )
    login_attempts_per_address_account: int = Field(
        default=10,
        ge=1,
        description="staffLogin attempts at one account from one client IP address per 15 minutes.",
    )
    login_attempts_per_address: int = Field(
        default=50,
        ge=1,
        description="staffLogin attempts from one client IP address per 15 minutes, at any "
        "accounts.",
    )
    login_attempts_per_account: int = Field(
        default=100,
        ge=1,
        description="staffLogin attempts at one account from every address per 15 minutes: "
        "much more than one address may make, so that no single address can lock it.",
    )

    max_query_depth: int = 12
    max_query_aliases: int = 15
    max_query_tokens: int = 1_000
    anonymous_max_query_tokens: int = Field(
        default=300, description="Token limit of documents sent without a token (sign-in)."
    )
    max_expensive_fields: int = Field(
        default=2,
        description="Uses of CPU-heavy fields (passwordStrength, staffLogin) in one request.",
    )
    max_query_directives: int = 50
    max_query_nodes: int = 50_000
    max_body_bytes: int = Field(
        default=1_000_000,
        description="Largest request body accepted (a creditAddBatch of 1,000 payments fits).",
    )
    cors_origins: list[str] = Field(
        default=[], description="Browser origins allowed to call the API (CORS)."
    )
    introspection: bool | None = Field(
        default=None,
        description="Answer introspection (authenticated staff only): default on in "
        "development, off in production.",
    )
    session_token_ttl_hours: int = Field(default=12, description="Lifetime of staffLogin tokens.")
    token_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        description="How long a process trusts a token it has looked up; a revoked token "
        "stops working within this time (at once in the process that revoked it). 0: look "
        "every token up on every request.",
    )
    compiled_operations: bool = Field(
        default=True,
        description="Answer repeated read queries the compiler knows without graphql-core's "
        "executor (gql/compiled); false sends every request through the executor.",
    )
    trusted_documents: Literal["tokens", "all"] = Field(
        default="tokens",
        description="Which requests must send a registered document (`documentId`) instead "
        "of a query: `tokens`, those with tokens created trusted-documents-only (partners); "
        "`all`, every request (staffLogin and GraphiQL too).",
    )

    access_log: bool = Field(
        default=True,
        description="Log one line per HTTP request (request id, operation, viewer, status, "
        "duration).",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Addresses of the proxies or load balancers whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed (comma-separated, or * behind a private network); the "
        "caller's address counts toward the sign-in limits.",
    )
    shutdown_timeout_seconds: int = Field(
        default=30,
        gt=0,
        description="On SIGTERM the server stops accepting connections and waits this long "
        "for the requests in flight to finish.",
    )
    readiness_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How long /readyz waits for the database before answering 503.",
    )
    metrics: bool | None = Field(
        default=None,
        description="Serve Prometheus metrics at /metrics (default: in development, and in "
        "production when metrics_token is set; true without a token serves them to anyone).",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, /metrics needs `Authorization: Bearer <this>`.",
    )
    tracing: Literal["off", "otlp", "console"] = Field(
        default="off",
        description="OpenTelemetry traces: otlp sends them to OTEL_EXPORTER_OTLP_ENDPOINT "
        "(HTTP, default http://localhost:4318), console prints them; off by default.",
    )

    @model_validator(mode="after")
    def _production_needs_a_secret(self) -> "Settings":
        if self.environment == "production" and self.secret_key is None:
            raise ValueError("CLIENTDESK_SECRET_KEY is required in production")
        if self.secret_key is not None and len(self.secret_key.get_secret_value()) < 32:
            raise ValueError("CLIENTDESK_SECRET_KEY needs at least 32 characters")
        return self

    @model_validator(mode="after")
    def _one_address_cannot_lock_an_account(self) -> "Settings":
        if self.login_attempts_per_account <= self.login_attempts_per_address_account:
            raise ValueError(
                "CLIENTDESK_LOGIN_ATTEMPTS_PER_ACCOUNT must be more than "
                "CLIENTDESK_LOGIN_ATTEMPTS_PER_ADDRESS_ACCOUNT, or one address could keep an "
                "account locked"
            )
        return self

    @property
    def signing_key(self) -> str:
        """The key for cabinet tokens (a random one per process in development)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return _DEVELOPMENT_KEY

    @property
    def password_hashing(self) -> dict[str, int]:
        """The argon2id parameters, as services.auth.configure_password_hasher takes them."""
        return {
            "time_cost": self.password_hash_time_cost,
            "memory_kib": self.password_hash_memory_kib,
            "parallelism": self.password_hash_parallelism,
        }

    @property
    def introspection_enabled(self) -> bool:
        if self.introspection is not None:
            return self.introspection
        return self.environment == "development"

    @property
    def metrics_enabled(self) -> bool:
        if self.metrics is not None:
            return self.metrics
        return self.environment == "development" or self.metrics_token is not None

    @property
    def graphiql_enabled(self) -> bool:
        return self.graphiql if self.graphiql is not None else self.environment == "development"


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
