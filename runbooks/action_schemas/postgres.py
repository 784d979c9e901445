"""Parameter schemas of the postgres actions (registered on import)."""
