"""Adapters at the edge: SMTP, OAuth providers, Stripe, LLM providers."""
