"""Reconcile reports: the same content as terminal output, Markdown, HTML and JSON."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from reconcile.canonical import Item, canonical
from reconcile.reconciler import SUCCESS, Report

PASS, FAIL = "✅", "❌"


def summary_lines(r: Report) -> list[tuple[bool, str]]:
    """(passed, line) in the guide's order: counts, every row, sample, performance, GSIs, errors."""
    f = r.full
    diffs = {k: r.count_of(k) for k in ("missing", "extra", "different", "unstorable", "unsettled")}
    exact = not any(diffs.values()) and not f.overflow
    in_flight = r.recheck.resolved
    counts_note = f" ({in_flight:,} in-flight differences resolved on re-check)" if in_flight else ""
    target = f"{f.target_live:,}"
    if r.repair is not None:
        target += f" before repair, {f.target_live + r.repaired_delta():,} after"
    lines = [
        (exact, f"Record Count Match: PostgreSQL: {f.source_rows:,} | DynamoDB: {target}{counts_note}"),
        (
            exact,
            f"Every row compared: {f.matched:,} matched, {diffs['missing']:,} missing, {diffs['extra']:,} extra, "
            f"{diffs['different']:,} different, {diffs['unstorable']:,} unstorable, {diffs['unsettled']:,} unverified"
            + (f", {f.overflow:,} not re-checked" if f.overflow else "")
            + f" | tombstones pending purge: {f.tombstones_pending:,}",
        ),
        (
            r.sample.confirmed == 0,
            f"Sample Validation: {r.sample.matched}/{r.sample.size} records match exactly",
        ),
    ]
    lat = r.query_latency
    if lat.count:
        lines.append(
            (
                lat.p95_ms <= r.latency_threshold_ms,
                f"Query Performance: Average {lat.avg_ms:.1f}ms, p50 {lat.p50_ms:.1f}ms, p95 {lat.p95_ms:.1f}ms "
                f"(Target: p95 <{r.latency_threshold_ms:g}ms, {lat.count} queries)",
            )
        )
    if r.gsis:
        broken = [g.name for g in r.gsis if not g.functional]
        queries = sum(g.queries for g in r.gsis)
        lines.append(
            (
                not broken,
                f"All GSI Queries: Functional ({len(r.gsis)} indexes, {queries} queries)"
                if not broken
                else f"GSI Queries: wrong results from {', '.join(broken)}",
            )
        )
    e = r.errors
    dead = "unreadable" if e.dead_letters is None else f"{e.dead_letters:,}"
    lines.append(
        (
            e.dead_letters is not None and e.rate <= r.max_error_rate,
            f"Error Rate: {e.rate:.1%} (Target: <{r.max_error_rate:.1%}) — {dead} dead letters, "
            f"{e.backfill_failed:,} backfill errors" + (f" in {e.migration_id}" if e.migration_id else ""),
        )
    )
    if r.repair is not None:
        rep = r.repair
        lines.append(
            (
                not rep.failed,
                f"Repair: {rep.repaired:,} of {rep.attempted:,} rewritten from PostgreSQL, "
                f"{rep.conflicts:,} changed meanwhile, {len(rep.failed):,} failed",
            )
        )
    return lines


def _item_json(item: Item | None) -> Any:
    return None if item is None else json.loads(canonical(item))


def to_dict(r: Report, limit: int) -> dict[str, Any]:
    """The report as JSON-ready data."""
    lat = r.query_latency
    return {
        "source": r.source,
        "target": r.target,
        "started_at": r.started_at,
        "seconds": round(r.seconds, 2),
        "verdict": r.verdict,
        "ok": r.ok,
        "blockers": r.blockers,
        "counts": {
            "source_rows": r.full.source_rows,
            "target_live_items": r.full.target_live,
            "target_tombstones": r.full.target_tombstones,
            "tombstones_pending_purge": r.full.tombstones_pending,
            "matched": r.full.matched,
            "in_flight_resolved": r.recheck.resolved,
            **{k: r.count_of(k) for k in ("missing", "extra", "different", "unstorable", "unsettled")},
            "not_rechecked": r.full.overflow,
        },
        "catch_up": None if r.recheck.catchup is None else vars(r.recheck.catchup),
        "sample": {"size": r.sample.size, "matched": r.sample.matched, "latency_ms": vars(r.sample.latency)},
        "query_latency_ms": {**vars(lat), "threshold_p95": r.latency_threshold_ms},
        "gsis": [
            {
                "name": g.name,
                "queries": g.queries,
                "compared": g.compared,
                "failures": g.failures,
                "changing": g.changing,
                **vars(g.latency),
            }
            for g in r.gsis
        ],
        "errors": {
            "dead_letters": r.errors.dead_letters,
            "backfill_failed": r.errors.backfill_failed,
            "migration_id": r.errors.migration_id,
            "rate": r.errors.rate,
            "max_rate": r.max_error_rate,
        },
        "repair": None if r.repair is None else vars(r.repair),
        "differences": [
            {
                "key": dict(zip(r.key_names, d.key, strict=False)),
                "kind": d.kind,
                "primary_key": list(d.pk) if d.pk else None,
                "detail": d.detail,
                "fields": [vars(f) for f in d.fields],
                "expected": _item_json(d.expected),
                "actual": _item_json(d.actual),
            }
            for d in r.differences[:limit]
        ],
    }


def _diff_text(fields: list[Any], limit: int = 4) -> str:
    parts = [f"{f.attribute}: {f.expected} → {f.actual}" for f in fields[:limit]]
    if len(fields) > limit:
        parts.append(f"… {len(fields) - limit} more")
    return "; ".join(parts)


def _key_text(r: Report, key: tuple[str, ...]) -> str:
    return ", ".join(f"{n}={v}" for n, v in zip(r.key_names, key, strict=False)) or "(no key)"


def to_markdown(r: Report, limit: int) -> str:
    out = [f"# Reconciliation: {r.source} → DynamoDB {r.target}", ""]
    out.append(f"Started {r.started_at}, took {r.seconds:.1f} s.")
    out.append("")
    out += [f"- {PASS if ok else FAIL} {line}" for ok, line in summary_lines(r)]
    out += ["", f"**{'🎉 ' + SUCCESS if r.ok else r.verdict}**", ""]
    if r.gsis or r.sample.latency.count:
        out += ["## Query latency", "", "| index | queries | compared | p50 ms | p95 ms | avg ms | result |"]
        out.append("|---|---:|---:|---:|---:|---:|---|")
        if r.sample.latency.count:
            s = r.sample.latency
            out.append(
                f"| (table, GetItem) | {s.count} | {r.sample.size} | {s.p50_ms:.1f} | {s.p95_ms:.1f} | "
                f"{s.avg_ms:.1f} | {'ok' if not r.sample.confirmed else 'differences'} |"
            )
        for g in r.gsis:
            lat = g.latency
            result = "functional" if g.functional else "; ".join(g.failures[:3])
            out.append(
                f"| {g.name} | {g.queries} | {g.compared} | {lat.p50_ms:.1f} | {lat.p95_ms:.1f} | {lat.avg_ms:.1f} | "
                f"{result} |"
            )
        out.append("")
    diffs = r.differences
    if diffs:
        out += [f"## Differences (first {min(limit, len(diffs))} of {len(diffs)})", ""]
        out += ["| kind | key | fields (PostgreSQL → DynamoDB) | detail |", "|---|---|---|---|"]
        for d in diffs[:limit]:
            cells = [d.kind, _key_text(r, d.key), _diff_text(d.fields), d.detail]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        out.append("")
    return "\n".join(out)


def to_html(r: Report, limit: int) -> str:
    e = html.escape
    rows = "".join(f"<li>{PASS if ok else FAIL} {e(line)}</li>" for ok, line in summary_lines(r))
    gsi_rows = "".join(
        f"<tr><td>{e(g.name)}</td><td>{g.queries}</td><td>{g.compared}</td><td>{g.latency.p50_ms:.1f}</td>"
        f"<td>{g.latency.p95_ms:.1f}</td><td>{g.latency.avg_ms:.1f}</td>"
        f"<td>{'functional' if g.functional else e('; '.join(g.failures[:3]))}</td></tr>"
        for g in r.gsis
    )
    diff_rows = "".join(
        f"<tr><td>{e(d.kind)}</td><td>{e(_key_text(r, d.key))}</td><td>{e(_diff_text(d.fields))}</td>"
        f"<td>{e(d.detail)}</td></tr>"
        for d in r.differences[:limit]
    )
    verdict = f"🎉 {SUCCESS}" if r.ok else r.verdict
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Reconciliation {e(r.source)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px}.ok{color:#070}.bad{color:#a00}</style></head><body>"
        f"<h1>Reconciliation: {e(r.source)} → DynamoDB {e(r.target)}</h1>"
        f"<p>Started {e(r.started_at)}, took {r.seconds:.1f} s.</p><ul>{rows}</ul>"
        f"<h2 class='{'ok' if r.ok else 'bad'}'>{e(verdict)}</h2>"
        "<h2>GSI latency</h2><table><tr><th>index</th><th>queries</th><th>compared</th><th>p50 ms</th>"
        f"<th>p95 ms</th><th>avg ms</th><th>result</th></tr>{gsi_rows}</table>"
        f"<h2>Differences ({len(r.differences)})</h2><table><tr><th>kind</th><th>key</th>"
        f"<th>fields (PostgreSQL → DynamoDB)</th><th>detail</th></tr>{diff_rows}</table></body></html>"
    )


def write_report(r: Report, path: Path, limit: int) -> None:
    """Write the report in the format the file's suffix names (.md, .html, .json)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        text = json.dumps(to_dict(r, limit), indent=2, ensure_ascii=False)
    elif suffix in (".html", ".htm"):
        text = to_html(r, limit)
    else:
        text = to_markdown(r, limit)
    path.write_text(text + "\n", encoding="utf-8")


def print_report(r: Report, console: Console, limit: int) -> None:
    """The terminal rendering: the summary lines, the GSI table, the first differences, the verdict."""
    for ok, line in summary_lines(r):
        console.print(f"{PASS if ok else FAIL} {line}", highlight=False, markup=False)
    if r.gsis:
        table = Table("index", "queries", "compared", "p50 ms", "p95 ms", "avg ms", "result", title="GSI queries")
        for g in r.gsis:
            lat = g.latency
            result = "functional" if g.functional else f"{len(g.failures)} wrong"
            table.add_row(
                g.name,
                str(g.queries),
                str(g.compared),
                f"{lat.p50_ms:.1f}",
                f"{lat.p95_ms:.1f}",
                f"{lat.avg_ms:.1f}",
                result,
            )
        console.print(table)
        for g in r.gsis:
            for failure in g.failures[:3]:
                console.print(f"  {g.name}: {failure}", highlight=False, markup=False)
    diffs = r.differences
    if diffs:
        table = Table("kind", "key", "fields (PostgreSQL → DynamoDB)", "detail", title="Differences")
        for d in diffs[:limit]:
            table.add_row(d.kind, _key_text(r, d.key), _diff_text(d.fields), d.detail)
        console.print(table)
        if len(diffs) > limit:
            console.print(f"… and {len(diffs) - limit:,} more (write them all with --report FILE.json)")
    if r.ok:
        console.print(f"🎉 {SUCCESS}", style="bold green", highlight=False, markup=False)
    else:
        console.print(r.verdict, style="bold red", highlight=False, markup=False)
