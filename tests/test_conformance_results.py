"""Tempest's subunit streams read into per-set summaries (issue 22), on streams Tempest itself wrote."""

from __future__ import annotations

import io
from pathlib import Path

import subunit

from bootstrap.conformance import guideline, results

STREAMS = Path(__file__).parent / "data" / "tempest"
QUOTA_CLASS = "tempest.api.object_storage.test_account_quotas.AccountQuotasTest"
TOKENS_CLASS = "tempest.api.identity.v3.test_tokens.TokensV3Test"


def _read(name: str) -> list[results.TempestResult]:
    return results.read_stream((STREAMS / name).read_bytes())


def test_a_class_that_failed_to_set_up_is_one_failure_with_its_exception_as_reason():
    found = {r.test_id: r for r in _read("setupclass-failures.subunit")}
    assert set(found) == {f"setUpClass ({QUOTA_CLASS})", f"setUpClass ({TOKENS_CLASS})",
                          "setUpClass (tempest.api.object_storage.test_container_sync_middleware."
                          "ContainerSyncMiddlewareTest)"}
    quota = found[f"setUpClass ({QUOTA_CLASS})"]
    assert quota.status == results.FAILED
    assert quota.reason.startswith("urllib3.exceptions.MaxRetryError: HTTPConnectionPool(host='127.0.0.1', port=9)")


def test_a_skipped_class_keeps_tempests_reason():
    found = {r.test_id: r for r in _read("class-skips.subunit")}
    quota = found[f"setUpClass ({QUOTA_CLASS})"]
    assert (quota.status, quota.reason) == (results.SKIPPED, "AccountQuotasTest skipped as swift is not available")
    assert found[f"setUpClass ({TOKENS_CLASS})"].status == results.FAILED


def test_the_api_set_counts_as_tempest_does():
    summary = results.api_summary("identity and object storage API", _read("class-skips.subunit"))
    assert summary.line() == "identity and object storage API: 0 passed, 1 failed, 2 skipped"


def test_required_tests_take_their_classs_result_and_the_rest_did_not_run():
    rocky = guideline.for_release("rocky")
    summary = results.guideline_summary("OpenStack Powered Storage 2019.11", rocky, _read("class-skips.subunit"))
    assert summary.total == 58
    by_test = {r.test_id: r for r in summary.failed + summary.skipped}
    quota = by_test[f"{QUOTA_CLASS}.test_upload_valid_object"]
    assert quota.status == results.SKIPPED and quota.reason.endswith("skipped as swift is not available")
    tokens = by_test[f"{TOKENS_CLASS}.test_create_token"]
    assert tokens.status == results.FAILED and tokens.reason.startswith(f"setUpClass ({TOKENS_CLASS}): urllib3")
    slo = by_test["tempest.api.object_storage.test_object_slo.ObjectSloTest.test_upload_manifest"]
    assert (slo.status, slo.reason) == (results.FAILED, results.NOT_RUN)
    assert summary.passed == 0 and len(summary.skipped) == 1  # the quota class holds one required test


def _stream(*events: dict) -> bytes:
    out = io.BytesIO()
    writer = subunit.StreamResultToBytes(out)
    for event in events:
        writer.status(**event)
    return out.getvalue()


def test_a_passed_required_test_counts_once_even_with_its_id_and_tags():
    test = "tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token[id-6f8e4436-fc96-4282-8122-e41df57197a9,smoke]"
    stream = _stream({"test_id": test, "test_status": "inprogress"}, {"test_id": test, "test_status": "success"})
    summary = results.guideline_summary("g", guideline.for_release("rocky"), results.read_stream(stream))
    assert summary.passed == 1 and len(summary.failed) == 57


def test_a_test_cut_short_is_a_failure_saying_so():
    stream = _stream({"test_id": "tempest.api.x.Y.test_z", "test_status": "inprogress"})
    (only,) = results.read_stream(stream)
    assert (only.status, only.reason) == (results.FAILED, results.UNFINISHED)


def test_a_whole_run_on_the_twin_reads_as_both_sets_passing():
    """The stream of a real `lab verify --tempest` on the twin (every identity and object storage API test)."""
    import gzip

    found = results.read_stream(gzip.open(STREAMS / "twin-run.subunit.gz").read())
    api = results.api_summary("API", found)
    required = results.guideline_summary("guideline", guideline.for_release("rocky"), found)
    assert (api.passed, len(api.failed), len(api.skipped)) == (274, 0, 5)
    assert (required.passed, len(required.failed), len(required.skipped)) == (58, 0, 0)
    assert any(r.test_id.startswith("tempest.api.object_storage.test_object_temp_url.") for r in found)
