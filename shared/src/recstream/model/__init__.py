"""The pure domain model: per-user state, the fold, features, ratings, sessions, decay,
the contributions to the shared statistics."""
