"""Metadata store (SQLite)."""
