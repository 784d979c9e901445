"""Database backends: Django's own, with what DRPlan needs added (`sqlite3`: connections reused across threads)."""
