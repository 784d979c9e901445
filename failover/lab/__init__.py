"""The DR lab: a real PostgreSQL primary/standby pair, a Redis primary/replica and a small
orders application on 127.0.0.1, under var/lab/, that DRPlan runbooks fail over and back.

    python manage.py lab up [--sync] | status [--json] | down | chaos ...

Modules: state (files under var/lab/), procs (unprivileged processes), pg and redisnode (one
server each), cluster (up/down/status/chaos), probes (replication/RPO probes), app (the
orders writer, `python -m failover.lab.app`), actions (functions runbooks call through the
`python` action). Nothing here imports Django at module level except actions, so the app
process starts quickly.
"""
