from __future__ import annotations

import django_filters

from core.choices import AuditAction, AuthMethod
from core.models import AuditEntry


class AuditEntryFilterSet(django_filters.FilterSet):
    """?actor_username=&action=&object_type=&object_id=&at__gte=&at__lte=&seq__gte=&seq__lte="""

    actor_username = django_filters.CharFilter()
    action = django_filters.ChoiceFilter(choices=AuditAction.choices)
    auth_method = django_filters.ChoiceFilter(choices=AuthMethod.choices)
    object_type = django_filters.CharFilter()
    object_id = django_filters.CharFilter()
    at__gte = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte")
    at__lte = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="lte")
    seq__gte = django_filters.NumberFilter(field_name="seq", lookup_expr="gte")
    seq__lte = django_filters.NumberFilter(field_name="seq", lookup_expr="lte")

    class Meta:
        model = AuditEntry
        fields: list[str] = []
