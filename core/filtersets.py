"""Filters of the API's lists. Every FilterSet derives from `StrictFilterSet`: a query parameter the
schema calls invalid is 400, never silently ignored, and an id that matches nothing is an empty list."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db import models
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from drf_spectacular.utils import extend_schema_field

from core.choices import AuditAction, AuthMethod
from core.models import AuditEntry


class StrictBooleanField(forms.Field):
    """`true`/`false` (or 1/0); anything else is an error (django-filter's default ignores it)."""

    def to_python(self, value: Any) -> bool | None:
        if value in self.empty_values:
            return None
        text = str(value).lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise forms.ValidationError("Enter true or false.", code="invalid")


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


INT64 = (-(2**63), 2**63 - 1)  # what the databases store; a larger number would be a 500 from the driver


@extend_schema_field({"type": "integer", "format": "int64", "minimum": INT64[0], "maximum": INT64[1]})
class IntegerFilter(django_filters.NumberFilter):
    """A whole number within 64 bits (django-filter's NumberFilter takes 1.5); for ids, one that matches
    nothing gives an empty list, as a slug that matches nothing does (not a 400 "not one of the choices")."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", INT64[0])
        kwargs.setdefault("max_value", INT64[1])
        super().__init__(*args, **kwargs)


class StrictFilterSet(django_filters.FilterSet):
    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.BooleanField: {"filter_class": BooleanFilter},
        models.ForeignKey: {"filter_class": IntegerFilter},
        models.OneToOneField: {"filter_class": IntegerFilter},
    }


class AuditEntryFilterSet(StrictFilterSet):
    """?actor_username=&action=&object_type=&object_id=&at__gte=&at__lte=&seq__gte=&seq__lte="""

    actor_username = django_filters.CharFilter()
    action = django_filters.ChoiceFilter(choices=AuditAction.choices)
    auth_method = django_filters.ChoiceFilter(choices=AuthMethod.choices)
    object_type = django_filters.CharFilter()
    object_id = django_filters.CharFilter()
    at__gte = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte")
    at__lte = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="lte")
    seq__gte = IntegerFilter(field_name="seq", lookup_expr="gte")
    seq__lte = IntegerFilter(field_name="seq", lookup_expr="lte")

    class Meta:
        model = AuditEntry
        fields: list[str] = []
