"""The DR lab: a real PostgreSQL primary/standby pair, a Redis primary/replica and a small orders
application on 127.0.0.1, under var/lab/, that the Lab plan's runbooks fail over and back with the
first-class actions (postgres.*, redis.*, http, sql, shell), reaching the servers through secrets.

    python manage.py lab up [--sync] [--ssh] | status [--json] | down | chaos ... | monitor

Modules: state (files under var/lab/), cluster (up/down/status/chaos), probes (what `status` and the
monitor read from the servers), app (the orders writer, `python -m lab.app`) and httpapi (its admin
API, which the runbooks drive like a load balancer's), monitor (failure detection), setup (the secrets,
the lab's copies of the runbooks and their approval). The servers' processes come from
core/localservers. Nothing in plans/, runbooks/ or failover/ imports this app; it imports them.
"""
