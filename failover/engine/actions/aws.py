"""Executors of the aws actions."""
