"""Settings, read once from the environment (and `.env`)."""

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    app_name: str = 'Todo'
    database_url: str = "sqlite:///./todo.db"
    cors_origins: list[str] = []
