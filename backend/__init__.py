"""Devora API v2 server core."""

__version__ = "2.0.0"
