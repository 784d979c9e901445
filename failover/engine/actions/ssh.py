"""Executors of the ssh actions."""
