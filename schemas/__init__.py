"""Request and response shapes of the HTTP API; a leaf package."""
