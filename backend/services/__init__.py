"""Business rules per area; no FastAPI imports."""
