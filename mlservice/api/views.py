"""The ML service's endpoints (port 8045, drplan.ml_urls). JSON in and out; every error has the
project's one shape (core.api.errors); every prediction is logged with its model version and latency."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.parsers import DepthLimitedJSONParser
from mlservice import registry, services
from mlservice.api import requests

log = logging.getLogger("mlservice.predictions")

ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}
ANSWER = {"type": "object", "additionalProperties": True}
NUM = {"type": "number"}
STR = {"type": "string"}
COMMON = {"model_version": STR, "latency_ms": NUM}
RTO_ANSWER = {
    "type": "object",
    "properties": {
        "plan": {"type": "string", "nullable": True},
        "p50_seconds": NUM,
        "p90_seconds": NUM,
        "baseline_seconds": NUM,
        "baseline": STR,
        "rto_seconds": NUM,
        "probability_meet_rto": NUM,
        "unknown_conditions": {"type": "array", "items": STR},
        "features": {"type": "object", "additionalProperties": {"type": "number", "nullable": True}},
        "training_data": {"type": "string", "enum": ["history", "generator"]},
        **COMMON,
    },
    "required": ["p50_seconds", "p90_seconds", "baseline_seconds", "features", "training_data", "model_version"],
}
ESTIMATE_ANSWER = {
    "type": "object",
    "properties": {
        "plan": {"type": "string", "nullable": True},
        **{k: NUM for k in ("p50_seconds", "p90_seconds", "p99_seconds", "mean_seconds", "min_seconds", "max_seconds")},
        "simulations": {"type": "integer"},
        "rto_seconds": NUM,
        "probability_meet_rto": NUM,
        "last_to_finish": {"type": "object", "additionalProperties": NUM, "description": "step → share of runs"},
        "steps": {"type": "integer"},
        "parallelism": {"type": "integer", "nullable": True},
        "approval_levels": {"type": "integer"},
        "duration_sources": {"type": "object", "additionalProperties": {"type": "integer"}},
        **COMMON,
    },
    "required": ["p50_seconds", "p90_seconds", "p99_seconds", "simulations", "steps", "model_version"],
}
RISK_ANSWER = {
    "type": "object",
    "properties": {
        "serial_number": STR,
        "failure_probability": NUM,
        "threshold": NUM,
        "at_risk": {"type": "boolean"},
        "drivers": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"attribute": STR, "name": STR, "value": NUM, "contribution": NUM},
            },
        },
        "citation": STR,
        **COMMON,
    },
    "required": ["failure_probability", "threshold", "at_risk", "drivers", "citation", "model_version"],
}
IMPACT_ANSWER = {
    "type": "object",
    "properties": {
        "impact_analysis": {"type": "integer"},
        "scores": {
            "type": "object",
            "description": "financial, operational, reputation, regulatory: {score, inputs}; overall: {score, level}",
            "additionalProperties": True,
        },
        "recovery_order": {
            "type": "object",
            "properties": {
                "order": {"type": "array", "items": STR},
                "schedule": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
                "total_downtime_cost": NUM,
                "method": {"type": "string", "enum": ["exact", "heuristic"]},
                "optimal": {"type": "boolean"},
                "lower_bound": NUM,
                "certified_ratio": NUM,
                "parallelism": {"type": "integer"},
                "cost_in_given_order": NUM,
            },
        },
        **COMMON,
    },
    "required": ["model_version"],
}


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    text = {
        400: "Invalid input: the message and `fields` name the field (missing, extra, wrong type, negative, "
        "NaN or infinite, cyclic graph).",
        404: "The plan named does not exist.",
        409: "The plan has no failover runbook to predict from.",
        413: "The body is over 1 MiB.",
    }
    return {code: OpenApiResponse(ERROR, description=text[code]) for code in codes}


class FiniteKeepingJSONParser(DepthLimitedJSONParser):
    """Like the API's parser, but NaN and Infinity are read (as floats) so the validator can name their field."""

    strict = False


class MLView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [FiniteKeepingJSONParser]
    schema = AutoSchema()


class PredictionView(MLView):
    """POST: validate against `request_schema`, call `use_case` with the loaded models, log it."""

    request_schema: dict[str, Any] = {}
    use_case: Callable[[registry.Loaded, dict[str, Any]], dict[str, Any]]
    model_name = ""

    def post(self, request: Request) -> Response:
        started = time.perf_counter()
        data = requests.validate(self.request_schema, request.data)
        models = registry.get()
        answer = type(self).use_case(models, data)
        latency_ms = (time.perf_counter() - started) * 1000
        version = answer.get("model_version")
        answer["latency_ms"] = round(latency_ms, 3)
        log.info(
            "prediction %s model=%s version=%s latency_ms=%.2f request_id=%s",
            request.path,
            self.model_name,
            version,
            latency_ms,
            getattr(request._request, "request_id", "-"),
        )
        return Response(answer)


def _document(
    schema: dict[str, Any], answer: dict[str, Any], summary: str, description: str, errors: tuple[int, ...]
) -> Callable:
    return extend_schema(
        summary=summary,
        description=description,
        request={"application/json": requests.openapi30(schema)},
        responses={
            200: OpenApiResponse(answer, description="The answer, with `model_version` and `latency_ms`."),
            **_errors(*errors),
        },
    )


class PredictRTOView(PredictionView):
    request_schema = requests.PREDICT_RTO
    use_case = staticmethod(services.predict_rto)
    model_name = "rto"

    @_document(
        requests.PREDICT_RTO,
        RTO_ANSWER,
        "Predict a plan's RTO (P50, P90) and the probability of meeting its target",
        "XGBoost quantile regression; `training_data` says whether it learned from this platform's history "
        "or from the documented generator; `baseline_seconds` is the sum of mean step durations along the "
        "critical path.",
        (400, 404, 409, 413),
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class EstimateRecoveryTimeView(PredictionView):
    request_schema = requests.ESTIMATE
    use_case = staticmethod(services.estimate_recovery_time)
    model_name = "recovery_time"

    @_document(
        requests.ESTIMATE,
        ESTIMATE_ANSWER,
        "Monte Carlo of the recovery: P50/P90/P99 and the probability of meeting the RTO",
        "The plan's composed failover (or the given steps) run `simulations` times with per-step durations "
        "fitted from history, else from the estimates (`duration_sources` counts which).",
        (400, 404, 409, 413),
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class AnalyzeFailureRiskView(PredictionView):
    request_schema = requests.ANALYZE_FAILURE_RISK
    use_case = staticmethod(services.analyze_failure_risk)
    model_name = "failure_risk"

    @_document(
        requests.ANALYZE_FAILURE_RISK,
        RISK_ANSWER,
        "Drive failure risk from SMART telemetry, with the attributes that drove it",
        "Trained on Backblaze Drive Stats (Source: Backblaze Drive Stats).",
        (400, 413),
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class ScoreImpactView(PredictionView):
    request_schema = requests.SCORE_IMPACT
    use_case = staticmethod(services.score_impact)
    model_name = "impact"

    @_document(
        requests.SCORE_IMPACT,
        IMPACT_ANSWER,
        "Impact scores (0-100) and the recovery order of least downtime cost",
        "Documented formulas (mlservice/impact.py); the order is exact up to 8 applications, above that a "
        "heuristic whose answer carries its certified ratio to a lower bound.",
        (400, 404, 413),
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class ModelsView(MLView):
    @extend_schema(
        summary="Each model's version, training date, provenance, features and validation metrics",
        responses={200: ANSWER},
    )
    def get(self, request: Request) -> Response:
        return Response(services.models_summary(registry.get()))


class HealthView(MLView):
    @extend_schema(summary="The service is up and its models are loaded", responses={200: ANSWER})
    def get(self, request: Request) -> Response:
        models = registry.get()
        return Response({"status": "ok", "models": {name: card["version"] for name, card in models.cards().items()}})
