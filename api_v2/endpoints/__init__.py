"""Thin handlers, one module per area."""
