"""Executors of the redis_replication actions."""
