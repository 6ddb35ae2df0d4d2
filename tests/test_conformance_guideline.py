"""The interop guideline kept in the repository, and Tempest's test ids matched against it (issue 22)."""

from __future__ import annotations

import re

import pytest

from bootstrap.conformance import guideline
from labcore.errors import LabError

SLO_UPLOAD = "tempest.api.object_storage.test_object_slo.ObjectSloTest.test_upload_manifest"
SLO_UPLOAD_ID = "id-2c3f24a6-36e8-4711-9aa2-800ee1fc7b5b"


def test_rocky_is_judged_by_2019_11_with_its_58_required_storage_tests():
    rocky = guideline.for_release("rocky")
    assert rocky.guideline == "2019.11"
    assert "rocky" in rocky.releases
    assert len(rocky.tests) == 58  # 60 entries, two tests required by two capabilities each
    assert rocky.source.startswith("https://opendev.org/openstack/interop/src/commit/")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", rocky.taken)


def test_both_guidelines_covering_rocky_are_kept_and_name_their_source():
    for name in ("2019.06", "2019.11"):
        kept = guideline.load(name)
        assert "rocky" in kept.releases and kept.program == "OpenStack Powered Storage"
        assert all(t.idempotent_id.startswith("id-") and t.name.startswith("tempest.api.") for t in kept.tests)


def test_the_required_list_has_the_tests_the_issue_found_failing():
    names = {t.name for t in guideline.for_release("rocky").tests}
    assert "tempest.api.object_storage.test_object_version.ContainerTest.test_versioned_container" in names
    assert "tempest.api.object_storage.test_account_quotas.AccountQuotasTest.test_upload_valid_object" in names
    assert "tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token" in names


def test_a_tempest_id_with_its_id_and_tags_matches_its_required_test():
    rocky = guideline.for_release("rocky")
    found = rocky.match(f"{SLO_UPLOAD}[{SLO_UPLOAD_ID},smoke]")
    assert found is not None and found.name == SLO_UPLOAD
    assert found.capabilities == ("objectstore-slo-support",)


def test_a_renamed_test_is_still_matched_by_its_idempotent_id():
    found = guideline.for_release("rocky").match(f"tempest.api.object_storage.test_slo.SloTest.test_manifest[{SLO_UPLOAD_ID}]")
    assert found is not None and found.name == SLO_UPLOAD


def test_a_test_without_brackets_is_matched_by_name_and_others_are_not_required():
    rocky = guideline.for_release("rocky")
    assert rocky.match(SLO_UPLOAD) is not None
    assert rocky.match("tempest.api.identity.admin.v3.test_users.UsersV3TestJSON.test_list_users[id-08f9aabb]") is None


def test_include_regexes_select_exactly_the_required_tests():
    rocky = guideline.for_release("rocky")
    patterns = [re.compile(p) for p in rocky.include_regexes()]
    assert any(p.search(f"{SLO_UPLOAD}[{SLO_UPLOAD_ID}]") for p in patterns)
    # a required name is not a prefix that selects a longer test name
    get_object = "tempest.api.object_storage.test_object_services.ObjectTest.test_get_object"
    own = next(p for p in patterns if p.pattern == rf"^{re.escape(get_object)}\b")
    assert own.search(get_object + "[id-02610ba7-86b7-4272-9ed8-aa8d417cb3cd]")
    assert not own.search(get_object + "_if_different[id-50d01f12-526f-4360-9ac2-75dd508d7b68]")


def test_split_test_id_drops_tags_keeps_ids():
    assert guideline.split_test_id("a.B.test_c[id-1,smoke,slow]") == ("a.B.test_c", frozenset({"id-1"}))
    assert guideline.split_test_id("a.B.test_c") == ("a.B.test_c", frozenset())


def test_a_release_without_a_kept_guideline_is_one_line_naming_what_is_known():
    with pytest.raises(LabError, match=r"no interop guideline is kept for release 'zed'; known: rocky"):
        guideline.for_release("zed")
