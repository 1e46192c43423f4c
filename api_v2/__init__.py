"""The versioned HTTP layer."""
