"""Clientdesk: a GraphQL API for back-office client account management."""
