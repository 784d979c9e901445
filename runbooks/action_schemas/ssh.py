"""Parameter schemas of the ssh actions (registered on import)."""
