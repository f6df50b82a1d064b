"""What the commands print about a run: the cron summary line, the demo table, the dry-run diff."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sync.model import DryRun, RunReport, Sample, changed_columns

WIDTH = 60  # longest value shown in a dry run


def summary_line(report: RunReport) -> str:
    users = report.counts["authz_users"].fetched
    groups = report.counts["authz_groups"].fetched
    members = report.counts["authz_group_members"].fetched
    warnings = f"; {len(report.warnings)} warnings (-v lists them)" if report.warnings else ""
    return (
        f"run {report.run_id} succeeded in {report.seconds:.1f} s: {users} users, {groups} groups, "
        f"{members} memberships; {report.total('inserted')} inserted, "
        f"{report.total('updated')} updated, {report.total('deleted')} deleted; "
        f"{report.api_requests} API requests{warnings}"
    )


def summary_json(report: RunReport) -> str:
    """The run's result as one JSON object (what scripts read instead of the ledger)."""
    document = {
        "run_id": report.run_id,
        "status": "succeeded",
        "duration_seconds": round(report.seconds, 3),
        "fetch_seconds": round(report.fetch_seconds, 3),
        "rows": {
            "inserted": report.total("inserted"),
            "updated": report.total("updated"),
            "deleted": report.total("deleted"),
        },
        "tables": {name: count.as_dict() for name, count in report.counts.items()},
        "api_requests": report.api_requests,
        "api_retries": report.retries,
        "api_rate_limited": report.rate_limited,
        "changes_logged": report.changes_logged,
        "warnings": report.warnings,
        "users_source": report.users_source.description if report.users_source else None,
    }
    return json.dumps(document, ensure_ascii=False)


def summary_table(report: RunReport) -> str:
    lines = [f"{'table':<34} {'rows':>7} {'inserted':>9} {'updated':>8} {'deleted':>8}"]
    for name, count in report.counts.items():
        lines.append(
            f"{name:<34} {count.fetched:>7} {count.inserted:>9} {count.updated:>8} "
            f"{count.deleted:>8}"
        )
    return "\n".join(lines)


def dry_run_text(result: DryRun) -> str:
    lines = []
    for name, count in result.counts.items():
        lines.append(
            f"{name}: {count.inserted} to insert, {count.updated} to update, "
            f"{count.deleted} to delete, {count.unchanged} unchanged"
        )
        if name in result.samples:
            lines += _samples(result.samples[name])
    verdict = "changes pending" if result.changed else "no changes"
    lines.append(f"dry run: {verdict}; {result.api_requests} API requests; nothing was written")
    return "\n".join(lines)


def _samples(sample: Sample) -> list[str]:
    keys = sample.keys
    lines = [f"  + {_key(keys, row)}" for row in sample.inserts]
    for before, after in sample.updates:
        changed = changed_columns(before, after)
        details = "; ".join(f"{n}: {_short(before[n])} → {_short(after[n])}" for n in changed)
        lines.append(f"  ~ {_key(keys, after)}: {details}")
    lines += [f"  - {_key(keys, row)}" for row in sample.deletes]
    return lines


def _key(keys: Sequence[str], row: dict[str, Any]) -> str:
    return " / ".join(str(row[k]) for k in keys)


def _short(value: Any) -> str:
    text = repr(value) if not hasattr(value, "isoformat") else value.isoformat()
    return text if len(text) <= WIDTH else text[: WIDTH - 1] + "…"
