"""Settings, read once from the environment (and `.env`)."""

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    app_name: str = 'Todo'
    # Outside production the app migrates its database at startup; in production it never
    # changes the schema: `alembic upgrade head` does.
    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///./todo.db"
    cors_origins: list[str] = []
