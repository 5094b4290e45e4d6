"""Reports and verdicts: what blocks cutover is named, every format carries it; validate's GSI checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bridge.config import load_settings
from reconcile.canonical import FieldDiff
from reconcile.compare import FullPass
from reconcile.error_rate import ErrorRate
from reconcile.probes import GsiResult, Latency, SampleResult
from reconcile.recheck import Difference, RecheckResult
from reconcile.reconciler import SUCCESS, Report, blockers_of
from reconcile.report import summary_lines, to_dict, to_html, to_markdown, write_report
from reconcile.validate import Checks, _target_checks
from tests.conftest import PAYMENTS_CONFIG


def _report(**changes: Any) -> Report:
    report = Report(
        source="public.payments",
        target="Payments",
        key_names=["CustomerId", "PaymentDateId"],
        started_at="2026-01-01T00:00:00+00:00",
        latency_threshold_ms=100,
        max_error_rate=0.001,
        full=FullPass(source_rows=10, target_live=10, matched=10),
        recheck=RecheckResult(),
        sample=SampleResult(size=10, latency=Latency.of([0.002] * 10)),
        gsis=[GsiResult("PaymentStatusIndex", 5, 5, [], Latency.of([0.003] * 5))],
        errors=ErrorRate(0, 0, "m1", 10),
        query_latency=Latency.of([0.002] * 15),
    )
    for name, value in changes.items():
        setattr(report, name, value)
    report.blockers = blockers_of(report)
    return report


def test_a_clean_report_is_a_success_in_every_format(tmp_path: Path) -> None:
    report = _report()
    assert report.ok and report.verdict == SUCCESS
    assert all(ok for ok, _ in summary_lines(report))
    assert SUCCESS in to_markdown(report, 10) and SUCCESS in to_html(report, 10)
    assert to_dict(report, 10)["verdict"] == SUCCESS
    for name in ("r.md", "r.html", "r.json"):
        write_report(report, tmp_path / name, 10)
    assert json.loads((tmp_path / "r.json").read_text())["ok"] is True


def test_each_problem_is_named_in_the_verdict() -> None:
    diff = Difference(("7", "2024-01-01#1"), "different", ("1",), {"A": {"N": "1"}}, {"A": {"N": "2"}})
    diff.fields = [FieldDiff("PaymentAmount", "10.5", "99")]
    report = _report(
        recheck=RecheckResult(confirmed=[diff], unsettled=[Difference(("8", "x"), "unsettled", None, None, None)]),
        gsis=[GsiResult("PaymentStatusIndex", 5, 5, ["query PaymentStatus=Completed: wrong"], Latency.of([0.2]))],
        query_latency=Latency.of([0.2] * 3),
        errors=ErrorRate(3, 2, "m1", 100),
    )
    assert not report.ok
    verdict = report.verdict
    for words in (
        "1 items that differ",
        "1 differences could not be verified",
        "GSI PaymentStatusIndex: 1 of 5 queries",
        "query p95 200.0 ms is over the 100 ms target",
        "error rate 5.000% is over the 0.1% limit",
    ):
        assert words in verdict, verdict
    markdown = to_markdown(report, 10)
    assert "PaymentAmount: 10.5 → 99" in markdown and "CustomerId=7, PaymentDateId=2024-01-01#1" in markdown
    data = to_dict(report, 10)
    assert data["differences"][0]["fields"] == [{"attribute": "PaymentAmount", "expected": "10.5", "actual": "99"}]
    assert data["counts"]["different"] == 1 and data["counts"]["unsettled"] == 1


class _DescribeOnly:
    """A DynamoDB client stub that answers DescribeTable with a fixed description."""

    def __init__(self, table: dict[str, Any]) -> None:
        self.table = table

    def describe_table(self, TableName: str) -> dict[str, Any]:
        return {"Table": self.table}


def test_validate_fails_a_gsi_that_is_not_active_or_has_the_wrong_key() -> None:
    settings = load_settings(PAYMENTS_CONFIG)
    mapping = settings.mapping()
    keys = [{"AttributeName": "CustomerId", "KeyType": "HASH"}, {"AttributeName": "PaymentDateId", "KeyType": "RANGE"}]

    def gsi(name: str, hash_key: str, range_key: str, status: str, projection: dict[str, Any]) -> dict[str, Any]:
        return {
            "IndexName": name,
            "KeySchema": [
                {"AttributeName": hash_key, "KeyType": "HASH"},
                {"AttributeName": range_key, "KeyType": "RANGE"},
            ],
            "Projection": projection,
            "IndexStatus": status,
        }

    table = {
        "TableStatus": "ACTIVE",
        "KeySchema": keys,
        "AttributeDefinitions": [],
        "GlobalSecondaryIndexes": [
            gsi("PaymentStatusIndex", "PaymentStatus", "PaymentDate", "CREATING", {"ProjectionType": "ALL"}),
            gsi("LoanPaymentIndex", "LoanId", "PaymentDate", "ACTIVE", {"ProjectionType": "ALL"}),
            gsi(
                "PaymentMethodIndex",
                "PaymentMethod",
                "PaymentDate",
                "ACTIVE",
                {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["CustomerId", "PaymentAmount", "PaymentStatus"]},
            ),
        ],
    }
    checks = Checks(initialized=True, limit=5)
    _target_checks(settings, mapping, _DescribeOnly(table), checks)  # type: ignore[arg-type]
    by_name = {c.name: c for c in checks.items}
    assert by_name["GSI PaymentStatusIndex"].status == "fail"
    assert "GSI PaymentStatusIndex is CREATING" in by_name["GSI PaymentStatusIndex"].figure
    assert by_name["GSI LoanPaymentIndex"].status == "fail"
    assert "mapping needs [('LoanId', 'HASH'), ('PaymentDateId', 'RANGE')]" in by_name["GSI LoanPaymentIndex"].figure
    assert by_name["GSI PaymentMethodIndex"].status == "pass"
    assert by_name["key schema"].status == "pass"
