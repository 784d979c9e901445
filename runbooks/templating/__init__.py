"""The template language of runbooks: how a step's parameters reference params, plan data, earlier
steps' outputs and secrets (rendering.py: the sandbox, the secrets rule; limits.py: what a template
may build). Part of runbooks as code: a document is checked against it at import
(runbooks.documents), and the execution engine renders each step with it before the step runs."""

from runbooks.templating.rendering import (
    RenderedParams,
    TemplateContext,
    check_template,
    render_step_params,
    render_value,
)

__all__ = ["RenderedParams", "TemplateContext", "check_template", "render_step_params", "render_value"]
