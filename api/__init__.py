"""Answers price questions over HTTP from PostgreSQL (read-only)."""
