"""Executors of the postgres actions."""
