"""The rules of each resource."""
