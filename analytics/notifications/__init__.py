"""Alerts and notifications: channels (signed webhooks, e-mail), alert rules on the RTO targets' current
values, subscriptions to execution events, and the outbox that delivers them (django-q2, retried with
backoff, every attempt recorded).

Entry points for other code:
- `services.evaluate_alert_rules(application_ids=None)`: evaluate the alert rules now (the monitoring
  probes call it after writing RTOTarget.current_*; the every-minute schedule calls it too).
- `services.notify_execution_event(event)`: the engine's `notify_event` hook (drplan/wiring.py).
"""
