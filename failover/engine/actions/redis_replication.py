"""The redis actions: replication status, promote, replicaof and FAILOVER of Redis nodes (redis-py).

    - {id: status, action: redis.replication_status, with: {url_secret: cache-dr-url, expect_role: replica}}
    - id: promote
      action: redis.promote
      with: {url_secret: cache-dr-url, primary_url_secret: cache-main-url}
    - {id: demote-old, action: redis.replicaof, with: {url_secret: cache-main-url, host: 10.0.2.21, port: 6379}}
    - id: switchover
      action: redis.failover
      with: {url_secret: cache-main-url, to_host: 10.0.2.21, to_port: 6379, timeout_ms: 5000,
             target_url_secret: cache-dr-url}

A node is reached through a secret holding its URL (redis://[[user]:password@]host:port/db or rediss://);
errors and log lines name it as `redis HOST:PORT (url_secret 'NAME')`, never with the URL or its password.
If the secret has allowed hosts, the URL's host must be one of them. Every call is bounded by the step's
timeout (30 s when it has none; one call at most CALL_TIMEOUT) and a cancel closes the connection under
it; a FAILOVER still waiting for its replica when the step stops is aborted (FAILOVER ABORT) so the primary
takes writes again.

Offsets and data loss. Redis counts replicated bytes: a primary's `master_repl_offset`, a replica's
`slave_repl_offset`. When a replica is promoted Redis records where it stood (`second_repl_offset` - 1), so
`redis.promote` measures `data_loss_bytes` = the old primary's offset (read right after the promotion from
`primary_url_secret` if it still answers and shares the replica's replication id; else the `primary_offset`
parameter, e.g. an earlier status step's output) - the replica's offset at promotion. `rpo_seconds` is 0
when nothing was lost, else how long the link had been down (an upper bound), or the seconds since the
replica last heard from the primary. `redis.failover` pauses writes on the primary until the target has
every byte (unless FORCE switches after timeout_ms), so it loses nothing; with `target_url_secret` it
measures it: the primary's offset when writes paused - the new primary's offset at promotion.
A replica's offset as seen by its primary (`replicas[].offset`, `lag_bytes`) is the last one it
acknowledged, about once a second.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from failover.engine.actions import ActionResult, StepContext, executor
from failover.engine.actions.sessions import ActionFailed, ActionStopped, StepSession, run_session

CALL_TIMEOUT = 5.0  # seconds one Redis call (connect, command) may take, within the step's timeout
PROBE_TIMEOUT = 2.0  # for the old primary after a promotion: it is often down, and the promotion is done
POLL_INTERVAL = 0.05  # while waiting for a link or a role
MAX_REPLICAS = 32  # listed in the output
URL_FORM = "redis://[:password@]host:port/db"


class _Node:
    """One Redis node, reached through its URL secret."""

    def __init__(self, param: str, name: str, url: str, host: str, port: int, call_timeout: float) -> None:
        self.label = f"redis {host}:{port} ({param} '{name}')"
        self.address = f"{host}:{port}"
        self._url = url
        self.call_timeout = call_timeout
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=call_timeout,
            socket_connect_timeout=call_timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()

    def describe(self, exc: BaseException) -> str:
        """An exception of redis-py in a few words, without the URL or the password."""
        if isinstance(exc, redis.exceptions.TimeoutError):
            text = f"no answer within {self.call_timeout:g}s"
        elif isinstance(exc, redis.exceptions.AuthenticationError):
            text = f"authentication failed: {exc}"
        elif isinstance(exc, redis.exceptions.ConnectionError):
            text = f"could not connect: {exc}"
        else:
            text = str(exc) or type(exc).__name__
        password = urlsplit(self._url).password
        for value in (self._url, password):
            if value:
                text = text.replace(value, "***")
        return text


class _Session(StepSession):
    """The nodes one step opened, and its deadline: every call goes through `call`."""

    poll_interval = POLL_INTERVAL

    def node(self, param: str, name: str, call_timeout: float = CALL_TIMEOUT) -> _Node:
        """Read the URL secret `name` (parameter `param`) and check it, before anything connects."""
        url = self.read_secret(param, name)
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port or 6379
            if parts.scheme not in ("redis", "rediss") or not host:
                raise ValueError
            # A little over the time left, so the step's own deadline is what a hung call meets first.
            call_timeout = min(call_timeout, max(0.1, self.remaining()) + 0.5)
            node = _Node(param, name, url, host, port, call_timeout)
        except ValueError:
            raise ActionFailed(f"{param} '{name}' is not a Redis URL ({URL_FORM})") from None
        return self.admit(node, host, port)

    def optional_node(self, param: str, params: dict[str, Any], call_timeout: float = CALL_TIMEOUT) -> _Node | None:
        return self.node(param, str(params[param]), call_timeout) if params.get(param) else None

    def call_node(self, node: _Node, what: str, function: Callable[[redis.Redis], Any]) -> Any:
        return self.call(node, what, lambda: function(node.client), on_stop=node.close)

    def info(self, node: _Node) -> dict[str, Any]:
        return self.call_node(node, "INFO replication", lambda client: client.info("replication"))

    def state(self, node: _Node) -> dict[str, Any]:
        return replication_state(self.info(node))


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def replication_state(info: dict[str, Any]) -> dict[str, Any]:
    """INFO replication of one node, in DRPlan's words (primary / replica, offsets, link, replicas)."""
    primary = info.get("role") == "master"
    own_offset = _int(info.get("master_repl_offset"))
    state: dict[str, Any] = {
        "role": "primary" if primary else "replica",
        "offset": own_offset if primary else _int(info.get("slave_repl_offset"), own_offset),
        "replid": str(info.get("master_replid") or ""),
    }
    if not primary:
        link = {
            "host": str(info.get("master_host") or ""),
            "port": _int(info.get("master_port")),
            "link": str(info.get("master_link_status") or ""),
            "last_io_seconds_ago": _int(info.get("master_last_io_seconds_ago"), -1),
            "sync_in_progress": bool(_int(info.get("master_sync_in_progress"))),
        }
        if "master_link_down_since_seconds" in info:
            link["link_down_since_seconds"] = _int(info["master_link_down_since_seconds"])
        state["primary"] = link
    numbered = sorted((k for k in info if k.startswith("slave") and k[5:].isdigit()), key=lambda k: int(k[5:]))
    replicas = []
    for key in numbered[:MAX_REPLICAS]:
        entry = info[key]
        if isinstance(entry, dict):
            offset = _int(entry.get("offset"))
            replicas.append(
                {
                    "host": str(entry.get("ip") or ""),
                    "port": _int(entry.get("port")),
                    "state": str(entry.get("state") or ""),
                    "offset": offset,
                    "lag_bytes": max(0, own_offset - offset),
                    "lag_seconds": _int(entry.get("lag")),
                }
            )
    state["replicas"] = replicas
    state["connected_replicas"] = _int(info.get("connected_slaves"))
    if "master_failover_state" in info:  # Redis 6.2+
        state["failover_state"] = str(info["master_failover_state"])
    return state


def _summary(state: dict[str, Any]) -> str:
    if state["role"] == "primary":
        replicas = "".join(f", {r['host']}:{r['port']} {r['state']} lag {r['lag_bytes']} B" for r in state["replicas"])
        return f"primary at offset {state['offset']} with {state['connected_replicas']} replica(s){replicas}"
    link = state["primary"]
    return f"replica of {link['host']}:{link['port']} (link {link['link']}) at offset {state['offset']}"


@executor("redis.replication_status")
def run_replication_status(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    def body(s: _Session) -> ActionResult:
        node = s.node("url_secret", str(params.get("url_secret") or ""))
        state = s.state(node)
        ctx.log(f"{node.label}: {_summary(state)}")
        expected = params.get("expect_role")
        if expected and state["role"] != expected:
            return ActionResult(False, output=state, error=f"{node.label}: is a {state['role']}, expected a {expected}")
        return ActionResult(True, output=state)

    return run_session(_Session(ctx), body)


@executor("redis.promote")
def run_promote(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    def body(s: _Session) -> ActionResult:
        node = s.node("url_secret", str(params.get("url_secret") or ""))
        old = s.optional_node("primary_url_secret", params, PROBE_TIMEOUT)
        known_offset = params.get("primary_offset")
        if known_offset is not None and (isinstance(known_offset, bool) or _int(known_offset, -1) < 0):
            raise ActionFailed(f"{node.label}: primary_offset {known_offset!r} is not a replication offset")
        before = s.state(node)
        if before["role"] == "primary":
            ctx.log(f"{node.label}: already a primary (offset {before['offset']}); not promoted again")
            return ActionResult(True, output={"promoted": False, "already_primary": True, **_brief(before)})
        link = before["primary"]
        if link["link"] == "up":
            ctx.log(
                f"{node.label}: its link to {link['host']}:{link['port']} is up: that primary still answers; "
                "fence it or make it a replica (redis.replicaof) so it stops taking writes"
            )
        s.call_node(node, "REPLICAOF NO ONE", lambda client: client.execute_command("REPLICAOF", "NO", "ONE"))
        info = s.info(node)
        after = replication_state(info)
        if after["role"] != "primary":
            raise ActionFailed(f"{node.label}: still a replica after REPLICAOF NO ONE")
        second = _int(info.get("second_repl_offset"), -1)
        offset = second - 1 if second > 0 else before["offset"]  # where the replica stood at promotion
        ctx.log(f"{node.label}: promoted at offset {offset} (was a replica of {link['host']}:{link['port']})")

        primary_offset = _old_primary_offset(s, old, before) if old is not None else None
        if primary_offset is None and known_offset is not None:
            primary_offset = _int(known_offset)
            ctx.log(f"{node.label}: the old primary's last known offset is {primary_offset} (primary_offset)")
        lost = max(0, primary_offset - offset) if primary_offset is not None else None
        measurements: dict[str, float] = {}
        if lost is not None:
            measurements["data_loss_bytes"] = lost
            ctx.log(f"{node.label}: {lost} byte(s) of the old primary's replication stream are not on the new primary")
        else:
            ctx.log(f"{node.label}: the old primary's offset is unknown: data loss not measured")
        if lost == 0:
            measurements["rpo_seconds"] = 0.0
        elif "link_down_since_seconds" in link:
            measurements["rpo_seconds"] = float(link["link_down_since_seconds"])
        elif lost is not None and link["last_io_seconds_ago"] >= 0:
            measurements["rpo_seconds"] = float(link["last_io_seconds_ago"])
        output = {
            "promoted": True,
            "already_primary": False,
            **_brief(after),
            "offset": offset,
            "previous_primary": f"{link['host']}:{link['port']}",
            "link_was": link["link"],
            "primary_offset": primary_offset,
            "data_loss_bytes": lost,
        }
        return ActionResult(True, output=output, measurements=measurements)

    return run_session(_Session(ctx), body)


def _brief(state: dict[str, Any]) -> dict[str, Any]:
    return {"role": state["role"], "offset": state["offset"]}


def _old_primary_offset(s: _Session, old: _Node, replica_before: dict[str, Any]) -> int | None:
    """The old primary's offset now, if it answers and its history is the one the replica followed. The
    promotion is done: nothing here fails the step (not even its deadline or a cancel)."""
    try:
        state = s.state(old)
    except ActionFailed as failure:  # usually: it is down, which is why we fail over
        s.ctx.log(f"{failure}; data loss measured from primary_offset if given")
        return None
    if state["replid"] != replica_before["replid"]:
        s.ctx.log(f"{old.label}: its replication id differs from the one the replica followed: offsets not comparable")
        return None
    s.ctx.log(f"{old.label}: {state['role']} at offset {state['offset']}")
    return state["offset"]


@executor("redis.replicaof")
def run_replicaof(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    def body(s: _Session) -> ActionResult:
        node = s.node("url_secret", str(params.get("url_secret") or ""))
        host = str(params.get("host") or "").strip()
        port = _int(params.get("port"), -1)
        if not host or not 1 <= port <= 65535:
            raise ActionFailed(f"{node.label}: host must be non-empty and port within 1-65535")

        def following(state: dict[str, Any]) -> bool:
            link = state.get("primary") or {}
            return state["role"] == "replica" and link.get("host") == host and link.get("port") == port

        before = s.state(node)
        if following(before) and before["primary"]["link"] == "up":
            ctx.log(f"{node.label}: already a replica of {host}:{port} with its link up; nothing to do")
            return ActionResult(True, output={"changed": False, **_brief(before), "primary": f"{host}:{port}"})
        started = time.monotonic()
        s.call_node(node, f"REPLICAOF {host} {port}", lambda client: client.execute_command("REPLICAOF", host, port))
        ctx.log(f"{node.label}: REPLICAOF {host} {port} (was a {_summary(before)}); waiting for the link")
        seen: list[dict[str, Any]] = [before]

        def link_up() -> dict[str, Any] | None:
            state = s.state(node)
            seen.append(state)
            return state if following(state) and state["primary"]["link"] == "up" else None

        def last() -> str:
            link = seen[-1].get("primary") or {}
            syncing = "yes" if link.get("sync_in_progress") else "no"
            return f"link {link.get('link') or 'none'}, sync in progress: {syncing}"

        state = s.wait(node, f"the link to {host}:{port} to come up", link_up, last)
        waited = round(time.monotonic() - started, 3)
        ctx.log(f"{node.label}: replica of {host}:{port}, link up at offset {state['offset']} after {waited:g}s")
        output = {"changed": True, **_brief(state), "primary": f"{host}:{port}", "link": "up", "waited_seconds": waited}
        return ActionResult(True, output=output)

    return run_session(_Session(ctx), body)


@executor("redis.failover")
def run_failover(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    def body(s: _Session) -> ActionResult:
        node = s.node("url_secret", str(params.get("url_secret") or ""))
        target = s.optional_node("target_url_secret", params)
        to = (str(params["to_host"]).strip(), _int(params.get("to_port"), -1)) if params.get("to_host") else None
        force = bool(params.get("force"))
        if force and to is None:
            raise ActionFailed(f"{node.label}: force needs to_host and to_port")
        before = s.state(node)
        if before["role"] == "replica":
            link = before["primary"]
            now_following = (link["host"], link["port"])
            if to is None or now_following == to:
                ctx.log(f"{node.label}: already a replica of {link['host']}:{link['port']}; no failover needed")
                output = {"failed_over": False, **_brief(before), "new_primary": f"{link['host']}:{link['port']}"}
                return ActionResult(True, output=output)
            raise ActionFailed(
                f"{node.label}: is a replica of {link['host']}:{link['port']}; FAILOVER runs on the primary"
            )
        timeout_ms = _int(params.get("timeout_ms"), 0) or int(max(0.5, s.remaining() - 1.0) * 1000)
        command: list[Any] = ["FAILOVER", *(["TO", to[0], to[1]] if to else []), *(["FORCE"] if force else [])]
        command += ["TIMEOUT", timeout_ms]

        def start(client: redis.Redis) -> list[Any]:
            # One round trip: INFO runs right after FAILOVER paused the writes, so it reads the final offset.
            pipe = client.pipeline(transaction=False)
            pipe.execute_command(*command)
            pipe.info("replication")
            return pipe.execute(raise_on_error=False)

        text = " ".join(str(part) for part in command)
        reply, info = s.call_node(node, text, start)
        if isinstance(reply, Exception):
            if "unknown command" in str(reply).lower():
                raise ActionFailed(
                    f"{node.label}: the server does not support FAILOVER (Redis 6.2 or later); "
                    "use redis.promote and redis.replicaof"
                )
            raise ActionFailed(f"{node.label}: {text} refused: {node.describe(reply)}")
        paused_at = replication_state(info)["offset"] if isinstance(info, dict) else before["offset"]
        ctx.log(f"{node.label}: {text}: writes paused at offset {paused_at}; waiting for the roles to swap")
        try:
            after = _wait_demoted(s, node, to)
            new_primary = f"{after['primary']['host']}:{after['primary']['port']}"
            promoted_at = _wait_promoted(s, target) if target is not None else None
        except ActionStopped:
            _abort(node, ctx)
            raise
        if promoted_at is not None:
            lost: int | None = max(0, paused_at - promoted_at)
        else:
            lost = None if force else 0  # without FORCE Redis switches only once the target has every byte
        measurements: dict[str, float] = {}
        if lost is not None:
            measurements["data_loss_bytes"] = float(lost)
            if lost == 0:
                measurements["rpo_seconds"] = 0.0
        ctx.log(
            f"{node.label}: now a replica of {new_primary}; "
            + (
                f"{lost} byte(s) lost"
                if lost is not None
                else "data loss not measured (FORCE without target_url_secret)"
            )
        )
        output = {
            "failed_over": True,
            **_brief(after),
            "old_primary": node.address,
            "new_primary": new_primary,
            "paused_at_offset": paused_at,
            "new_primary_offset": promoted_at,
            "data_loss_bytes": lost,
            "forced": force,
            "link": after["primary"]["link"],
        }
        return ActionResult(True, output=output, measurements=measurements)

    return run_session(_Session(ctx), body)


def _wait_demoted(s: _Session, node: _Node, to: tuple[str, int] | None) -> dict[str, Any]:
    seen: list[dict[str, Any]] = []

    def demoted() -> dict[str, Any] | None:
        state = s.state(node)
        seen.append(state)
        done = state.get("failover_state", "no-failover") == "no-failover"
        if state["role"] == "primary" and done:
            raise ActionFailed(
                f"{node.label}: the FAILOVER was aborted (the replica did not catch up within timeout_ms, or it "
                "went away); it is still the primary and takes writes again"
            )
        if state["role"] == "replica" and done:
            if to is not None and (state["primary"]["host"], state["primary"]["port"]) != to:
                raise ActionFailed(
                    f"{node.label}: became a replica of {state['primary']['host']}:{state['primary']['port']}"
                )
            return state
        return None

    def last() -> str:
        state = seen[-1] if seen else {}
        return f"role {state.get('role')}, failover state {state.get('failover_state')}"

    return s.wait(node, "the roles to swap", demoted, last)


def _wait_promoted(s: _Session, target: _Node) -> int:
    """Wait until the target is a primary; return its offset at promotion."""
    seen: list[dict[str, Any]] = []

    def promoted() -> dict[str, Any] | None:
        info = s.info(target)
        seen.append(info)
        return info if info.get("role") == "master" else None

    info = s.wait(
        target, "it to become the primary", promoted, lambda: f"role {seen[-1].get('role') if seen else None}"
    )
    second = _int(info.get("second_repl_offset"), -1)
    return second - 1 if second > 0 else _int(info.get("master_repl_offset"))


def _abort(node: _Node, ctx: StepContext) -> None:
    """A step that stops while FAILOVER waits must not leave the primary's writes paused (bounded by the
    node's call timeout: this runs after the step's deadline or cancel)."""
    try:
        node.client.execute_command("FAILOVER", "ABORT")
        role = node.client.info("replication").get("role")
    except Exception as exc:
        ctx.log(f"{node.label}: FAILOVER ABORT: {node.describe(exc)}")
        return
    ctx.log(f"{node.label}: FAILOVER aborted; it is {'still the primary' if role == 'master' else 'a replica'}")
