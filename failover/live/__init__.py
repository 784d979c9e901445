"""The live event stream of executions over websockets (issue 5).

Persist → publish → backfill by seq: every event is an ExecutionEvent row first (failover/engine/events.py);
`consumers.ExecutionStreamConsumer` sends a client the rows after its last sequence number, then live events,
dropping anything it already sent and backfilling from the table when a live message skips a number.
Live events reach a web process through the Redis channel layer (REDIS_URL) and through `feed.Feed`, one
poller per web process that reads new rows of the executions watched there.
"""
