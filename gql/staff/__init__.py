"""Staff users, the viewer, and how they sign in."""
