"""Todo."""
