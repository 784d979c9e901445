from django.db import models


class AuditAction(models.TextChoices):
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"
    SUBMIT = "submit", "Submit for approval"
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    IMPORT = "import", "Import"
    EXECUTE = "execute", "Execute"
    CANCEL = "cancel", "Cancel"
    CONFIRM = "confirm", "Confirm"
    LOGIN = "login", "Log in"
    ALERT = "alert", "Alert"


class AuthMethod(models.TextChoices):
    SESSION = "session", "Browser session"
    TOKEN = "token", "API token"
    CLI = "cli", "Command line"
    SYSTEM = "system", "System"
