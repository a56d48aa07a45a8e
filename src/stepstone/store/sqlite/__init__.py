"""The SQLite adapter of the store port (the embedded default)."""
