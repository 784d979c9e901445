"""Parameter schemas of the aws actions (registered on import)."""
