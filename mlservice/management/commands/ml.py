"""python manage.py ml train [--quick] [--if-missing] [--dir DIR]   write every model's files
python manage.py ml check [--dir DIR]                                 load them as the service would"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mlservice import artifacts


class Command(BaseCommand):
    help = "Train the ML service's models (ml train) or check their files (ml check)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["train", "check"])
        parser.add_argument("--dir", type=Path, help="model directory (default: DRPLAN_ML_MODEL_DIR, else var/ml)")
        parser.add_argument("--quick", action="store_true", help="small training sets (tests): seconds, not minutes")
        parser.add_argument("--if-missing", action="store_true", help="train only if a model file is missing")

    def handle(self, *args: Any, **options: Any) -> None:
        from mlservice import registry, training

        directory = options["dir"] or artifacts.model_dir()
        if options["action"] == "check" or options["if_missing"]:
            try:
                loaded = registry.load(directory)
            except artifacts.ModelFileError as exc:
                if options["action"] == "check":
                    raise CommandError(str(exc)) from None
                self.stdout.write(f"training the ML models into {directory} ({exc})")
            else:
                for name, card in loaded.cards().items():
                    self.stdout.write(f"{name}: {card['version']} trained {card['trained_at']}")
                return
        timings = training.train_all(directory, quick=options["quick"], log=self.stdout.write)
        self.stdout.write(f"models written to {directory}: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
