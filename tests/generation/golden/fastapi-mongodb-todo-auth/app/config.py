"""Settings, read once from the environment (and `.env`)."""

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    app_name: str = 'Todo'
    mongodb_url: str = "mongodb://localhost:27017"
    mongodb_db: str = 'todo'
    jwt_secret: str = "development-only-secret-change-me-0123456789"
    access_token_ttl_s: int = 900
    cors_origins: list[str] = []
