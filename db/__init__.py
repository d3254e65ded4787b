"""Persistence: tables, engine and sessions, migrations. No GraphQL here."""
