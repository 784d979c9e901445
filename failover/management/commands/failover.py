"""`manage.py failover run PLAN [--type planned|unplanned|test] [--param k=v ...] [--dry-run] [--wait] [--json]`.

PLAN is the plan's plan_id or numeric id. See failover/cli.py for what --wait does.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from core.choices import AuthMethod
from core.exceptions import DomainError
from core.lookups import find
from failover import cli, services
from plans.models import DRPlan


class Command(cli.RunCommand):
    help = "Run a failover (or DR test) of a plan."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        run = sub.add_parser("run", help="Start a failover, failback or DR test of a plan.")
        run.add_argument("plan", help="The plan's plan_id or numeric id.")
        run.add_argument("--type", choices=["planned", "unplanned", "test", "failback"], default="planned")
        cli.add_run_options(run)

    def handle(self, *args: Any, **options: Any) -> None:
        text = str(options["plan"])
        plan = find(DRPlan.objects.all(), text, "plan_id")
        if plan is None:
            raise CommandError(f"no plan {text!r}")
        try:
            actor = services.get_user(options["user"]) if options.get("user") else None
            kwargs = {
                "actor": actor,
                "auth_method": AuthMethod.CLI,
                "reason": options["reason"],
                "parameters": cli.parse_params(options.get("param")),
                "dry_run": options["dry_run"],
                "coerce_strings": True,
            }
            kind = options["type"]
            if kind == "test":
                execution = services.start_test(plan, **kwargs)
            elif kind == "failback":
                execution = services.start_failback(plan, **kwargs)
            else:
                execution = services.start_failover(plan, execution_type=kind, **kwargs)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        if not options["json"]:
            self.stdout.write(f"execution #{execution.pk} ({execution.execution_type}) created: {execution.status}")
        cli.finish(self, execution.pk, options)
