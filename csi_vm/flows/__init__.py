"""VM disk operations, journal and resume."""
