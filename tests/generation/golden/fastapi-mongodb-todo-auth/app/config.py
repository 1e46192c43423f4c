"""Settings, read once from the environment (and `.env`)."""

import secrets
from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    app_name: str = 'Todo'
    environment: Literal["development", "test", "production"] = "development"
    mongodb_url: str = "mongodb://localhost:27017"
    mongodb_db: str = 'todo'
    jwt_secret: SecretStr = SecretStr("")
    access_token_ttl_s: int = 900
    cors_origins: list[str] = []

    @model_validator(mode="after")
    def _own_secret(self) -> "Settings":
        """No shared default: production needs JWT_SECRET; elsewhere a random one per process
        (tokens then end with the process)."""
        secret = self.jwt_secret.get_secret_value()
        if self.environment == "production" and len(secret) < 32:
            raise ValueError("Set JWT_SECRET (at least 32 characters) to run in production")
        if not secret:
            self.jwt_secret = SecretStr(secrets.token_urlsafe(32))
        return self
