"""`manage.py secret set NAME [--description ...] [--allowed-host HOST ...]`, `secret list`,
`secret delete NAME`.

The value of `set` is read from standard input (a trailing newline is dropped) or, on a
terminal, from a hidden prompt: never from the command line, where it would land in the
shell history and the process list. `--keep-value` changes only the description or the
allowed hosts of an existing secret. `--allowed-host` (repeatable) replaces the list of
hosts the secret may be sent to; `--any-host` empties it; neither keeps it.
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core import secrets
from core.choices import AuthMethod
from core.exceptions import DomainError
from core.models import Secret


class Command(BaseCommand):
    help = "Manage encrypted secrets: set (value from stdin or a prompt), list, delete."
    stealth_options = ("stdin",)  # call_command(..., stdin=StringIO(...)) in tests

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        setter = sub.add_parser("set", help="Create a secret or replace its value (read from stdin or a prompt).")
        setter.add_argument("name")
        setter.add_argument("--description", help="What the secret is for (kept when omitted on an update).")
        setter.add_argument("--user", help="Username recorded in the audit log.")
        setter.add_argument(
            "--allowed-host",
            action="append",
            dest="allowed_hosts",
            metavar="HOST",
            help="A host the secret may be sent to (host, host:port, *.example.com); repeat for more. "
            "Replaces the list.",
        )
        setter.add_argument("--any-host", action="store_true", help="Remove the host restriction.")
        setter.add_argument(
            "--keep-value", action="store_true", help="Do not read a value: change only the description or hosts."
        )
        sub.add_parser("list", help="Print the names and descriptions of stored secrets (never values).")
        deleter = sub.add_parser("delete", help="Delete a secret.")
        deleter.add_argument("name")
        deleter.add_argument("--user", help="Username recorded in the audit log.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['subcommand']}")(options)
        except DomainError as exc:
            raise CommandError(exc.message) from None

    def _actor(self, options: dict[str, Any]) -> Any:
        username = options.get("user")
        if not username:
            return None
        actor = get_user_model().objects.filter(username=username).first()
        if actor is None:
            raise CommandError(f"no user {username!r}")
        return actor

    def _read_value(self, name: str, options: dict[str, Any]) -> str:
        stdin = options.get("stdin") or sys.stdin
        if stdin.isatty():
            value = getpass.getpass(f"Value of secret '{name}': ")
            if getpass.getpass("Repeat it: ") != value:
                raise CommandError("the two values differ; nothing stored")
            return value
        value = stdin.read()
        if value.endswith("\r\n"):
            return value[:-2]
        return value.removesuffix("\n")

    def _set(self, options: dict[str, Any]) -> None:
        name = options["name"]
        actor = self._actor(options)
        if options["any_host"] and options["allowed_hosts"]:
            raise CommandError("--allowed-host and --any-host cannot be combined")
        hosts = [] if options["any_host"] else options["allowed_hosts"]
        existing = Secret.objects.filter(name=name).first()
        if options["keep_value"]:
            if existing is None:
                raise CommandError(f"--keep-value needs an existing secret; '{name}' is not defined")
            secrets.update_secret(
                existing,
                description=options["description"],
                allowed_hosts=hosts,
                actor=actor,
                auth_method=AuthMethod.CLI,
            )
            self.stdout.write(f"Updated secret '{name}'")
            return
        value = self._read_value(name, options)
        if not value:
            raise CommandError(f"no value given for secret '{name}' (pipe it to stdin); nothing stored")
        secrets.set_secret(
            name,
            value,
            actor=actor,
            auth_method=AuthMethod.CLI,
            description=options["description"],
            allowed_hosts=hosts,
        )
        self.stdout.write(f"{'Updated' if existing else 'Created'} secret '{name}'")

    def _list(self, options: dict[str, Any]) -> None:
        for secret in Secret.objects.order_by("name"):
            line = f"{secret.name}\t{secret.updated_at:%Y-%m-%d %H:%M:%S}"
            if secret.description:
                line += f"\t{secret.description}"
            if secret.allowed_hosts:
                line += "\tallowed hosts: " + ", ".join(secret.allowed_hosts)
            self.stdout.write(line)

    def _delete(self, options: dict[str, Any]) -> None:
        secrets.delete_secret(options["name"], actor=self._actor(options), auth_method=AuthMethod.CLI)
        self.stdout.write(f"Deleted secret '{options['name']}'")
