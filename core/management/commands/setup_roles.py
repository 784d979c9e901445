from django.core.management.base import BaseCommand

from core.roles import setup_roles


class Command(BaseCommand):
    help = "Create or update the role groups (viewer, operator, approver, auditor, admin). Idempotent."

    def handle(self, *args: object, **options: object) -> None:
        for role, count in setup_roles().items():
            self.stdout.write(f"{role}: {count} permissions")
