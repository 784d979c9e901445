from django.db import models


class Trend(models.TextChoices):
    IMPROVING = "improving", "Improving"
    STABLE = "stable", "Stable"
    DEGRADING = "degrading", "Degrading"


class TestType(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    AD_HOC = "ad_hoc", "Ad hoc"
    COMPLIANCE = "compliance", "Compliance"


class TestOutcome(models.TextChoices):
    PASSED = "passed", "Passed"  # every target met
    PARTIAL = "partial", "Partially passed"  # recovered, but a target was missed
    FAILED = "failed", "Failed"  # recovery did not complete


class FindingCategory(models.TextChoices):
    PROCESS = "process", "Process"
    TECHNOLOGY = "technology", "Technology"
    PEOPLE = "people", "People"
    DOCUMENTATION = "documentation", "Documentation"
    PERFORMANCE = "performance", "Performance"


class ActionItemStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"
    WONT_FIX = "wont_fix", "Won't fix"


class Sentiment(models.TextChoices):
    POSITIVE = "positive", "Positive"
    NEUTRAL = "neutral", "Neutral"
    NEGATIVE = "negative", "Negative"
    SEVERE = "severe", "Severely negative"


class Level(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"
