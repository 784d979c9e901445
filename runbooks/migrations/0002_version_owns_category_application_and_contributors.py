"""Everything that decides how a version runs belongs to the version (issue 8): name, category and
application move from the runbook to each of its versions (copied from the runbook), every version
records its contributors (its creator so far), and frozen versions and decisions are protected from
cascading deletes."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import core.validators


def copy_runbook_fields_to_versions(apps, schema_editor):
    Runbook = apps.get_model("runbooks", "Runbook")
    RunbookVersion = apps.get_model("runbooks", "RunbookVersion")
    for runbook in Runbook.objects.all():
        RunbookVersion.objects.filter(runbook=runbook).update(
            name=runbook.name, category=runbook.category, application=runbook.application_id
        )
    Through = RunbookVersion.contributors.through
    Through.objects.bulk_create(
        Through(runbookversion_id=version_id, user_id=user_id)
        for version_id, user_id in RunbookVersion.objects.filter(created_by__isnull=False).values_list(
            "pk", "created_by_id"
        )
    )


def copy_version_fields_to_runbooks(apps, schema_editor):
    Runbook = apps.get_model("runbooks", "Runbook")
    RunbookVersion = apps.get_model("runbooks", "RunbookVersion")
    for runbook in Runbook.objects.all():
        version = RunbookVersion.objects.filter(runbook=runbook).order_by("-created_at").first()
        if version is not None:
            Runbook.objects.filter(pk=runbook.pk).update(
                name=version.name, category=version.category, application=version.application_id
            )


class Migration(migrations.Migration):
    dependencies = [
        ("plans", "0003_drplan_detection_window_seconds"),
        ("runbooks", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="runbookversion",
            name="name",
            field=models.CharField(default="", max_length=200),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="runbookversion",
            name="category",
            field=models.CharField(
                choices=[
                    ("failover", "Failover"),
                    ("failback", "Failback"),
                    ("test", "DR test"),
                    ("restore", "Restore"),
                    ("validation", "Validation"),
                    ("maintenance", "Maintenance"),
                ],
                default="failover",
                max_length=20,
            ),
        ),
        migrations.AddField(
            model_name="runbookversion",
            name="application",
            field=models.ForeignKey(
                blank=True,
                help_text="The application this version recovers; plan failovers compose it by this and the category.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="runbook_versions",
                to="plans.application",
            ),
        ),
        migrations.AddField(
            model_name="runbookversion",
            name="contributors",
            field=models.ManyToManyField(
                blank=True,
                help_text="Everyone who created, edited or submitted this version: none of them may approve it.",
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(copy_runbook_fields_to_versions, copy_version_fields_to_runbooks),
        migrations.RemoveField(model_name="runbook", name="application"),
        migrations.RemoveField(model_name="runbook", name="category"),
        migrations.RemoveField(model_name="runbook", name="name"),
        migrations.AlterField(
            model_name="runbook",
            name="slug",
            field=models.SlugField(
                max_length=100, unique=True, validators=[core.validators.validate_natural_key]
            ),
        ),
        migrations.AlterField(
            model_name="runbookapproval",
            name="version",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="decisions", to="runbooks.runbookversion"
            ),
        ),
        migrations.AlterField(
            model_name="runbookversion",
            name="runbook",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="versions", to="runbooks.runbook"
            ),
        ),
    ]
