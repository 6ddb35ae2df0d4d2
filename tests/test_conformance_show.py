"""The end of `lab verify --tempest`: per-set counts, each failure with its reason, each skip and whether it is deliberate."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from bootstrap.conformance import deliberate, show
from bootstrap.conformance.results import FAILED, PASSED, SKIPPED, SetSummary, TempestResult
from bootstrap.conformance.runner import Conformance

LOCKOUT = "tempest.api.identity.v3.test_users.IdentityV3UsersTest.test_user_account_lockout[id-a7ad8bbf-2cff-4520-8c1d-96332e151658]"
TEMPURL = "tempest.api.object_storage.test_object_temp_url.ObjectTempUrlTest.test_get_object_using_temp_url[id-f91c96d4]"


def _summary(name: str, *found: TempestResult) -> SetSummary:
    summary = SetSummary(name)
    for one in found:
        summary.add(one)
    return summary


def _printed(found: Conformance) -> str:
    out = io.StringIO()
    show.render(found, Console(file=out, width=200, color_system=None))
    return out.getvalue()


def test_a_clean_run_says_all_skips_are_deliberate():
    api = _summary("API", TempestResult("a.B.test_c", PASSED, ""), TempestResult(LOCKOUT, SKIPPED, "Security compliance not available"))
    text = _printed(Conformance(_summary("guideline", TempestResult("a.B.test_c", PASSED, "")), api, Path("r.subunit"),
                                Path("t.log"), 300))
    assert "API: 1 passed, 0 failed, 1 skipped (all listed as deliberate)" in text
    assert "skipped (deliberate)  " + LOCKOUT in text and "[security_compliance]" in text
    assert "Tempest (5.0 min)" in text


def test_a_skip_the_lab_did_not_choose_and_a_failure_are_named_with_their_reasons():
    failure = TempestResult("tempest.api.object_storage.test_account_quotas.AccountQuotasTest.test_upload_valid_object",
                         FAILED, 'setUpClass (...): tempest.lib.exceptions.NotFound: No "ResellerAdmin" role found')
    api = _summary("API", failure, TempestResult(TEMPURL, SKIPPED, "TempURL middleware not available"))
    text = _printed(Conformance(_summary("guideline", failure), api, Path("r"), Path("t"), 60))
    assert "FAILED  " + failure.test_id in text and 'No "ResellerAdmin" role found' in text
    assert text.count("FAILED  ") == 1  # the same failure in both sets is listed once
    assert "SKIPPED (not deliberate)  " + TEMPURL in text and "TempURL middleware not available" in text
    assert "API: 0 passed, 1 failed, 1 skipped (1 not listed as deliberate)" in text


def test_every_deliberate_skip_names_a_test_of_tempests_api_sets_with_a_reason():
    for name, why in deliberate.DELIBERATE.items():
        assert name.startswith(("tempest.api.identity.", "tempest.api.object_storage.")) and len(why) > 40
