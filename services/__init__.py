"""Business rules: keyword-only async functions over a session. No GraphQL here."""
