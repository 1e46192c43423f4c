"""Settings read once from the environment (and an optional `.env`)."""

import ipaddress
import json
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Self

import limits
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIB = 1024 * 1024


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


CommaList = Annotated[list[str], NoDecode]


def _rate_limit(text: str) -> str:
    """Accept what the `limits` library parses: `5/minute`, `100 per hour`, `10/5 seconds`."""
    try:
        limits.parse(text)
    except ValueError as exc:
        raise ValueError(f"not a rate limit: {text!r}") from exc
    return text


RateLimitText = Annotated[str, AfterValidator(_rate_limit)]


def _split_list(value: object) -> object:
    """Accept `a,b` as people type it, or a JSON list."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [item.strip() for item in text.split(",") if item.strip()]


class ModelEntry(BaseModel):
    """One model of the catalogue (`LLM_MODELS`, a JSON list of these)."""

    id: str = "openai/gpt-4o"
    provider: str = "openai"
    kinds: list[str] = ["agentic"]
    plans: list[str] = ["free", "pro", "team"]
    # Tokens a request and its answer may hold together (the provider's limit).
    context_window: int = Field(default=128_000, ge=1024)
    # What the provider charges, in US dollars per million tokens.
    input_usd_per_million: Decimal = Field(default=Decimal(0), ge=0, le=10_000)
    output_usd_per_million: Decimal = Field(default=Decimal(0), ge=0, le=10_000)


class Settings(BaseSettings):
    """Every knob of the service; names match the environment variables."""

    # Empty variables count as unset: docker-compose passes every setting, most of them empty.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True
    )

    environment: Environment = Environment.DEVELOPMENT
    # Optional only so that `export-openapi` and tests can build an app without a server;
    # load_settings() refuses to run without one.
    mongodb_url: SecretStr | None = None
    mongodb_db: str = "devora"
    mongodb_timeout_ms: int = Field(default=2000, ge=100, le=30000)
    # Rate-limit counters and the job queue: run it with `maxmemory-policy noeviction`.
    redis_url: SecretStr | None = None
    # The cache's own Redis, free to evict (allkeys-lru); REDIS_URL when unset.
    cache_redis_url: SecretStr | None = None
    redis_timeout_s: float = Field(default=0.1, gt=0, le=5)
    # Per process (each uvicorn worker and each job worker has its own pools): size them so
    # replicas x workers x pool stays under the servers' connection limits.
    redis_max_connections: int = Field(default=100, ge=1, le=10_000)
    mongodb_max_pool_size: int = Field(default=100, ge=1, le=10_000)
    # Unset outside production: a random secret is generated once and kept in
    # `DATA_DIR/jwt_secret`, so restarts keep sessions. Never a constant from the source.
    jwt_secret: SecretStr | None = None
    data_dir: str = ".data"
    access_token_ttl_s: int = Field(default=15 * 60, ge=60, le=15 * 60)
    frontend_origins: CommaList = ["http://localhost:5173"]
    trusted_proxies: CommaList = []
    log_format: LogFormat = LogFormat.CONSOLE
    log_level: str = "info"
    max_body_bytes: int = Field(default=10 * MIB, ge=1024)
    redis_breaker_cooldown_s: float = Field(default=5.0, gt=0, le=300)

    refresh_token_ttl_days: int = Field(default=30, ge=1, le=365)
    verify_token_ttl_s: int = Field(default=24 * 3600, ge=60, le=7 * 24 * 3600)
    reset_token_ttl_s: int = Field(default=3600, ge=60, le=3600)
    admin_email: str | None = None
    admin_password: SecretStr | None = None

    smtp_url: SecretStr | None = None
    # Without SMTP, mails (reset and verification tokens included) go to the log: allowed in
    # production only when said explicitly.
    mail_to_log: bool = False
    # `/metrics` needs `Authorization: Bearer <METRICS_TOKEN>` when set; in production it is
    # not served at all without one. `/docs`, `/redoc` and `/openapi.json` can be turned off.
    metrics_token: SecretStr | None = None
    docs_enabled: bool = True
    smtp_from: str = "Devora <no-reply@devora.dev>"
    smtp_timeout_s: float = Field(default=10.0, gt=0, le=60)
    public_app_url: str = "http://localhost:5173"

    oauth_google_client_id: str | None = None
    oauth_google_client_secret: SecretStr | None = None
    oauth_google_issuer: str = "https://accounts.google.com"
    oauth_github_client_id: str | None = None
    oauth_github_client_secret: SecretStr | None = None
    oauth_github_authorize_url: str = "https://github.com/login/oauth/authorize"
    oauth_github_token_url: str = "https://github.com/login/oauth/access_token"
    oauth_github_api_url: str = "https://api.github.com"
    http_timeout_s: float = Field(default=10.0, gt=0, le=120)

    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str = "https://api.stripe.com"
    stripe_price_pro: str = "price_pro_monthly"
    stripe_price_team: str = "price_team_monthly"
    stripe_max_network_retries: int = Field(default=2, ge=0, le=5)
    stripe_rate_limit_retries: int = Field(default=3, ge=0, le=6)
    stripe_rate_limit_backoff_s: float = Field(default=1.0, ge=0, le=10)
    stripe_webhook_tolerance_s: int = Field(default=300, ge=1, le=3600)
    # A handling unfinished after this long died with its process (or its database): the next
    # delivery takes it again. Longer than a handling's Stripe calls can take with retries.
    stripe_webhook_abandoned_after_s: int = Field(default=120, ge=1, le=3600)
    plan_pro_price_cents: int = Field(default=2000, ge=0)
    plan_team_price_cents: int = Field(default=8000, ge=0)
    plan_currency: str = "usd"
    quota_free: int = Field(default=20, ge=0)
    quota_pro: int = Field(default=500, ge=0)
    quota_team: int = Field(default=2500, ge=0)

    # Storage per account; a refusal is 409 `project_limit_reached` / `message_limit_reached`.
    max_projects_free: int = Field(default=100, ge=1)
    max_projects_pro: int = Field(default=1000, ge=1)
    max_projects_team: int = Field(default=10_000, ge=1)
    max_messages_per_project: int = Field(default=5000, ge=2)

    max_active_jobs_free: int = Field(default=1, ge=1)
    max_active_jobs_pro: int = Field(default=3, ge=1)
    max_active_jobs_team: int = Field(default=10, ge=1)
    worker_concurrency: int = Field(default=4, ge=1, le=256)
    worker_shutdown_timeout_s: float = Field(default=30, ge=0, le=3600)
    job_heartbeat_s: float = Field(default=2.0, gt=0, le=60)
    job_stale_after_s: float = Field(default=30.0, gt=0, le=3600)
    job_reaper_interval_s: float = Field(default=5.0, gt=0, le=600)
    job_max_attempts: int = Field(default=2, ge=1, le=10)
    job_redelivery_s: int = Field(default=120, ge=1, le=86_400)
    job_cancel_wait_s: float = Field(default=5.0, ge=0, le=60)
    job_enqueue_timeout_s: float = Field(default=2.0, gt=0, le=30)
    # Open event streams (`GET /jobs/{id}/events`), counted across replicas in Redis; over a
    # cap → 429 `too_many_streams`. A stream ends after JOB_STREAM_MAX_S (the client resumes
    # with Last-Event-ID), so a replica that dies mid-stream holds its slots no longer.
    job_streams_per_job: int = Field(default=5, ge=1, le=1000)
    job_streams_per_user: int = Field(default=20, ge=1, le=10_000)
    job_stream_max_s: float = Field(default=600, gt=0, le=24 * 3600)
    # A job's events and file changes are deleted this long after it ended (a TTL index);
    # the job itself stays. Its event replay, changes and revert end with them (410).
    job_data_retention_days: int = Field(default=30, ge=1, le=3650)

    llm_base_url: str = "https://openrouter.ai/api/v1"
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(default=60.0, gt=0, le=600)
    llm_max_retries: int = Field(default=2, ge=0, le=6)
    llm_default_model: str = "openai/gpt-4o"
    llm_models: list[ModelEntry] = Field(default_factory=lambda: [ModelEntry()])
    llm_role_models: dict[str, str] = {}
    agent_max_calls: int = Field(default=40, ge=1, le=1000)
    agent_max_steps_per_role: int = Field(default=20, ge=1, le=500)
    agent_max_output_tokens_free: int = Field(default=20_000, ge=1)
    agent_max_output_tokens_pro: int = Field(default=100_000, ge=1)
    agent_max_output_tokens_team: int = Field(default=400_000, ge=1)
    agent_max_seconds: float = Field(default=600, gt=0, le=7200)
    agent_context_messages: int = Field(default=20, ge=0, le=200)
    # Each model call's prompt, in tokens, per plan (never more than the model's window less
    # the answer's room); older tool results are evicted first. A tool result holds at most
    # AGENT_TOOL_RESULT_MAX_CHARS characters (read_file reads a large file in parts).
    agent_context_tokens_free: int = Field(default=32_000, ge=2000)
    agent_context_tokens_pro: int = Field(default=64_000, ge=2000)
    agent_context_tokens_team: int = Field(default=128_000, ge=2000)
    agent_tool_result_max_chars: int = Field(default=20_000, ge=1000, le=1_000_000)
    # Spend per plan: model tokens (prompt + completion) a month, and US dollars a job (at the
    # catalogue's prices). A call that could pass either is not made: the job fails
    # `budget_exceeded`; with the month's tokens spent, admission answers 402.
    agent_monthly_tokens_free: int = Field(default=2_000_000, ge=1)
    agent_monthly_tokens_pro: int = Field(default=20_000_000, ge=1)
    agent_monthly_tokens_team: int = Field(default=100_000_000, ge=1)
    agent_job_cost_cap_usd_free: Decimal = Field(default=Decimal("0.50"), ge=0)
    agent_job_cost_cap_usd_pro: Decimal = Field(default=Decimal("5"), ge=0)
    agent_job_cost_cap_usd_team: Decimal = Field(default=Decimal("20"), ge=0)

    # The sandbox that runs a job's code (backend/generation/sandbox/): Debian's bubblewrap.
    # "" turns it off; then, as where the tool is missing, checks are skipped
    # (`sandbox_unavailable`), never reported as passed. Limits are per run; SANDBOX_HOME holds
    # the read-only dependency environments, built once per set of pins.
    sandbox_command: str = "bwrap"
    sandbox_home: str = ""  # "" → <temp dir>/devora-sandbox
    sandbox_concurrency: int = Field(default=2, ge=1, le=64)
    sandbox_timeout_s: float = Field(default=180, gt=0, le=3600)
    sandbox_cpu_s: int = Field(default=300, ge=1, le=36_000)
    sandbox_memory_mb: int = Field(default=2048, ge=64, le=1024 * 1024)
    sandbox_processes: int = Field(default=256, ge=8, le=100_000)
    sandbox_disk_mb: int = Field(default=512, ge=16, le=1024 * 1024)
    sandbox_output_bytes: int = Field(default=8 * MIB, ge=1024, le=1024 * MIB)

    # The in-process cache (no Redis) holds at most this many bytes; no cache stores a single
    # value bigger than CACHE_MAX_VALUE_BYTES (it is served from the source every time).
    cache_memory_max_bytes: int = Field(default=64 * MIB, ge=MIB)
    cache_max_value_bytes: int = Field(default=MIB, ge=1024)
    # Per process: values fetched from Redis, reused only under the version Redis gives each
    # request (backend/cache/prefetch.py). 0 bytes turns it off.
    cache_near_max_bytes: int = Field(default=16 * MIB, ge=0)
    cache_near_ttl_s: float = Field(default=30, ge=0)
    cache_ttl_project_list: int = Field(default=15 * 60, ge=0)
    cache_ttl_project: int = Field(default=5 * 60, ge=0)
    cache_ttl_user: int = Field(default=60, ge=0)
    cache_ttl_invoices: int = Field(default=3 * 60, ge=0)
    cache_ttl_plans: int = Field(default=6 * 3600, ge=0)
    cache_ttl_admin_stats: int = Field(default=60, ge=0)

    rate_limit_auth_login: RateLimitText = "5/minute"
    rate_limit_auth_register: RateLimitText = "10/hour"
    rate_limit_auth_password_forgot: RateLimitText = "5/hour"
    rate_limit_auth_verify_request: RateLimitText = "5/hour"
    rate_limit_generate_agentic: RateLimitText = "10/minute"
    rate_limit_generate_fullstack: RateLimitText = "5/minute"
    rate_limit_default_user: RateLimitText = "300/minute"
    rate_limit_default_anonymous: RateLimitText = "60/minute"
    rate_limit_stripe_webhook: RateLimitText = "1000/minute"
    rate_limit_admin: RateLimitText = "120/minute"

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_api_key and self.llm_api_key.get_secret_value() and self.llm_base_url)

    @field_validator("frontend_origins", "trusted_proxies", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("frontend_origins")
    @classmethod
    def _no_wildcard_origin(cls, origins: list[str]) -> list[str]:
        # CORS is sent with credentials, which browsers refuse to pair with "*".
        if any(origin == "*" for origin in origins):
            raise ValueError("FRONTEND_ORIGINS cannot contain '*'; list the origins")
        return [origin.rstrip("/") for origin in origins]

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            ipaddress.ip_network(proxy, strict=False)
        return proxies

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        if level.lower() not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError("LOG_LEVEL must be debug, info, warning, error or critical")
        return level.lower()

    @model_validator(mode="after")
    def _production_secrets(self) -> Self:
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else None
        if self.environment is Environment.PRODUCTION and not secret:
            raise ValueError("JWT_SECRET must be set to a secret of your own in production")
        if secret is not None and len(secret.encode()) < 32:
            raise ValueError("JWT_SECRET must be at least 32 bytes")
        if self.environment is Environment.PRODUCTION and not (self.smtp_url or self.mail_to_log):
            raise ValueError(
                "SMTP_URL must be set in production, or MAIL_TO_LOG=true to write every mail "
                "(reset and verification tokens included) to the log"
            )
        return self

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @cached_property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in self.trusted_proxies)


NO_DATABASE = (
    "MONGODB_URL is not set: `make run` starts a local database and sets it for you, "
    "or point MONGODB_URL at a MongoDB server (mongodb://host:27017/?replicaSet=rs0)"
)


def load_settings() -> Settings:
    """Settings from the environment; a bad or missing value stops the process with one line."""
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']).upper() or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
        raise SystemExit(f"Invalid configuration: {problems}") from None
    if settings.mongodb_url is None:
        raise SystemExit(NO_DATABASE)
    return settings
