"""A small Druid HTTP client (stdlib ``urllib`` only): supervisors on the overlord, SQL on the
broker (or router), and a bounded wait for ingested rows."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

SqlRow = dict[str, Any]
# Row counters that together account for every message a task read.
READ_COUNTERS = ("processed", "processedWithError", "thrownAway", "unparseable")
FINISHED = ("SUCCESS", "FAILED")


class DruidError(RuntimeError):
    """Druid answered with an error (the message carries Druid's own explanation)."""


@dataclass(frozen=True)
class DruidClient:
    """Endpoints of one Druid cluster.

    Attributes:
        overlord_url: e.g. ``http://127.0.0.1:8081`` (coordinator with the overlord folded in).
        broker_url: e.g. ``http://127.0.0.1:8082`` (a router URL works too).
        timeout_s: per-request timeout.
    """

    overlord_url: str = "http://127.0.0.1:8081"
    broker_url: str = "http://127.0.0.1:8082"
    timeout_s: float = 30.0

    def _call(self, method: str, url: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        req.add_header("Accept", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            raise DruidError(f"{method} {url}: HTTP {err.code}: {detail}") from err
        return json.loads(text) if text.strip() else None

    def submit_supervisor(self, spec: dict[str, Any]) -> str:
        """Create (or update) a supervisor; returns its id (the datasource name)."""
        out = self._call("POST", f"{self.overlord_url}/druid/indexer/v1/supervisor", spec)
        return str(out["id"])

    def supervisor_status(self, supervisor_id: str) -> dict[str, Any]:
        """The supervisor's status payload (state, partitions, offsets, ...)."""
        quoted = urllib.parse.quote(supervisor_id, safe="")
        url = f"{self.overlord_url}/druid/indexer/v1/supervisor/{quoted}/status"
        return dict(self._call("GET", url)["payload"])

    def supervisor_row_stats(self, supervisor_id: str) -> dict[str, int]:
        """Row counters summed over the supervisor's tasks: ``processed``, ``thrownAway``
        (outside the late/early cut-offs),
        ``unparseable``, ``processedWithError``."""
        quoted = urllib.parse.quote(supervisor_id, safe="")
        url = f"{self.overlord_url}/druid/indexer/v1/supervisor/{quoted}/stats"
        totals: dict[str, int] = {}
        for tasks in (self._call("GET", url) or {}).values():
            for report in tasks.values():
                counters = ((report or {}).get("totals") or {}).get("buildSegments") or {}
                for name, value in counters.items():
                    if isinstance(value, int | float):
                        totals[name] = totals.get(name, 0) + int(value)
        return totals

    def terminate_supervisor(self, supervisor_id: str) -> None:
        """Stop the supervisor and its tasks (they publish what they read)."""
        quoted = urllib.parse.quote(supervisor_id, safe="")
        self._call("POST", f"{self.overlord_url}/druid/indexer/v1/supervisor/{quoted}/terminate")

    def shutdown_tasks(self, data_source: str) -> list[str]:
        """Kill every unfinished task of ``data_source`` (what they hold is not published);
        returns their ids."""
        quoted = urllib.parse.quote(data_source, safe="")
        tasks = self._call("GET", f"{self.overlord_url}/druid/indexer/v1/tasks?datasource={quoted}")
        ids = [str(t["id"]) for t in tasks or [] if t.get("statusCode") not in FINISHED]
        for task_id in ids:
            url = (
                f"{self.overlord_url}/druid/indexer/v1/task/{urllib.parse.quote(task_id)}/shutdown"
            )
            self._call("POST", url)
        return ids

    def discard_ingestion(self, supervisor_id: str) -> None:
        """Terminate a supervisor and kill its tasks: for scratch datasources (demo, tests).

        Terminating alone lets the tasks publish, but one terminated seconds after its task
        started can leave that task running without a supervisor, holding a worker slot.
        """
        try:
            self.terminate_supervisor(supervisor_id)
        finally:
            self.shutdown_tasks(supervisor_id)

    def sql(self, query: str, parameters: Sequence[object] = ()) -> list[SqlRow]:
        """Run a Druid SQL query; rows as mappings. ``?`` placeholders take ``parameters``."""
        body: dict[str, Any] = {"query": query, "resultFormat": "object"}
        if parameters:
            body["parameters"] = [_sql_parameter(p) for p in parameters]
        return list(self._call("POST", f"{self.broker_url}/druid/v2/sql", body))

    def ingested_flows(self, data_source: str) -> int:
        """Flows Druid holds for ``data_source`` (the sum of the ``flows`` metric; 0 while the
        datasource does not exist yet)."""
        try:
            rows = self.sql(f'SELECT SUM(flows) AS n FROM "{_ident(data_source)}"')
        except DruidError as err:
            if "not found" in str(err).lower() or "OBJECT_NOT_FOUND" in str(err):
                return 0
            raise
        return int(rows[0]["n"] or 0) if rows else 0

    def wait_for_rows(
        self,
        data_source: str,
        expected: int,
        timeout_s: float = 180.0,
        poll_s: float = 1.0,
        on_poll: Callable[[int], None] | None = None,
    ) -> int:
        """Poll (bounded) until ``data_source`` holds at least ``expected`` flows.

        Returns the count reached; raises ``TimeoutError`` with the supervisor's state when
        ``timeout_s`` passes first.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            n = self.ingested_flows(data_source)
            if on_poll is not None:
                on_poll(n)
            if n >= expected:
                return n
            if time.monotonic() > deadline:
                state = self._state_for_error(data_source)
                raise TimeoutError(
                    f"druid: {data_source} has {n} of {expected} flows after {timeout_s:.0f}s "
                    f"(supervisor: {state})"
                )
            time.sleep(poll_s)  # polling interval of a bounded wait, not synchronisation

    def wait_for_read(self, supervisor_id: str, messages: int, timeout_s: float = 60.0) -> int:
        """Poll (bounded) until the supervisor's tasks have read ``messages`` Kafka messages
        (ingested, thrown away or unparseable); returns the number read.

        The flows can reach their expected count while rejected messages (late, early,
        unparseable) further along a partition are still unread; waiting for these too makes
        a comparison final.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            stats = self.supervisor_row_stats(supervisor_id)
            n = sum(stats.get(k, 0) for k in READ_COUNTERS)
            if n >= messages:
                return n
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"druid: {supervisor_id} read {n} of {messages} messages after "
                    f"{timeout_s:.0f}s ({stats})"
                )
            time.sleep(0.5)  # polling interval of a bounded wait

    def _state_for_error(self, supervisor_id: str) -> str:
        try:
            status = self.supervisor_status(supervisor_id)
        except (DruidError, OSError) as err:
            return f"unknown ({err})"
        pending = self._call("GET", f"{self.overlord_url}/druid/indexer/v1/pendingTasks") or []
        return (
            f"{status.get('detailedState')} {status.get('recentErrors') or ''}; "
            f"{len(pending)} task(s) waiting for a worker slot"
        )


def _ident(name: str) -> str:
    if '"' in name:
        raise ValueError(f"invalid Druid identifier: {name!r}")
    return name


def _sql_parameter(value: object) -> dict[str, object]:
    if isinstance(value, bool):
        return {"type": "BOOLEAN", "value": value}
    if isinstance(value, int):
        return {"type": "BIGINT", "value": value}
    if isinstance(value, float):
        return {"type": "DOUBLE", "value": value}
    return {"type": "VARCHAR", "value": str(value)}
