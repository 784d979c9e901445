"""Continuous RTO/RPO monitoring (issue 11, parts 1-3).

- Monitors and their probes (`models.py`): a probe is one step of a first-class action (`probes.py` lists
  which: read-only status actions) run through the engine's action runner on an interval; every result is a
  `ProbeSample` (RPO seconds, lag bytes, up/down, latency; "unknown" when it timed out or failed).
- Retention and downsampling (`retention.py`): raw samples for a short window, hourly and daily rollups
  (min/sum/max/count per metric) after that; `series()` answers the history from whichever is kept.
- Scheduling (`tasks.py`): one django-q2 ticker runs the due probes; compaction and the cadence check hourly.
- Current state (`status.py`, `GET /rto-rpo`), SLA violations (`violations.py`, `GET /rto-rpo/violations`).
- The API (`api/`), the lab's monitors (`services.ensure_lab_monitors`, installed by drplan/wiring.py as the
  lab's after-up hook).
"""
