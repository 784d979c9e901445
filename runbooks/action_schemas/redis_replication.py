"""Parameter schemas of the redis_replication actions (registered on import)."""
