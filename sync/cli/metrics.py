"""`--metrics-file`: the last run in Prometheus text format, for node_exporter's textfile collector.

Written atomically (a temporary file in the same directory, then a rename) so the collector
never reads half a file. A failed run still writes its file: the exit code says it failed, and
`authz_sync_last_success_timestamp_seconds` keeps the time of the last success, so an alert
on "no success for 26 hours" works whatever went wrong.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sync.model import RunReport

PREFIX = "authz_sync_"
LAST_SUCCESS = f"{PREFIX}last_success_timestamp_seconds"


@dataclass
class RunMetrics:
    finished_at: float  # Unix seconds
    exit_code: int
    last_success: float | None  # Unix seconds of the last successful run, if any
    report: RunReport | None = None  # None when the run failed


Sample = tuple[dict[str, str], float]


def _family(name: str, help_text: str, samples: list[Sample]) -> list[str]:
    lines = [f"# HELP {PREFIX}{name} {help_text}", f"# TYPE {PREFIX}{name} gauge"]
    for labels, value in samples:
        label_text = ",".join(f'{key}="{value}"' for key, value in labels.items())
        selector = f"{{{label_text}}}" if labels else ""
        lines.append(f"{PREFIX}{name}{selector} {float(value)!r}")  # exact: timestamps too
    return lines


def render(metrics: RunMetrics) -> str:
    lines: list[str] = []
    if metrics.last_success is not None:
        lines += _family(
            "last_success_timestamp_seconds",
            "Unix time the last successful run finished.",
            [({}, metrics.last_success)],
        )
    lines += _family(
        "last_run_timestamp_seconds",
        "Unix time the last run finished.",
        [({}, metrics.finished_at)],
    )
    lines += _family(
        "last_run_exit_code", "Exit code of the last run (0: success).", [({}, metrics.exit_code)]
    )
    if (report := metrics.report) is not None:
        rows = [
            ({"table": name, "operation": operation}, getattr(count, operation))
            for name, count in report.counts.items()
            for operation in ("fetched", "inserted", "updated", "deleted")
        ]
        lines += _family(
            "last_run_duration_seconds", "Wall time of the last run.", [({}, report.seconds)]
        )
        lines += _family("last_run_rows", "Rows of the last run by table and operation.", rows)
        lines += _family(
            "last_run_api_requests", "Requests to the extension.", [({}, report.api_requests)]
        )
        lines += _family("last_run_api_retries", "Requests retried.", [({}, report.retries)])
        lines += _family("last_run_api_rate_limited", "429 answers.", [({}, report.rate_limited)])
        if (users := report.users_source) is not None:
            lines += _family(
                "last_run_users_export_fallback",
                "1 when the export job failed and the users were read through the extension.",
                [({"source": users.name}, int(users.fell_back))],
            )
    return "\n".join(lines) + "\n"


def previous_last_success(path: Path) -> float | None:
    """The last success recorded in an earlier file, to carry it over a failed run."""
    try:
        text = path.read_text()
    except OSError:
        return None
    found = re.search(rf"^{LAST_SUCCESS} (\S+)$", text, re.M)
    try:
        return float(found.group(1)) if found else None
    except ValueError:
        return None  # a damaged file: better no value than a wrong one


def write_atomically(path: Path, content: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # the collector runs as another user
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
