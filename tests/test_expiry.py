"""Expiry times: the tag's format, time left, and the host timer that enforces them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from lab import expiry

NOON = datetime(2026, 12, 2, 12, 0, 0, tzinfo=timezone.utc)


def test_expires_at_is_start_plus_expiry_and_round_trips_through_the_tag():
    moment = expiry.expires_at(timedelta(hours=8), NOON)
    assert expiry.tag_value(moment) == "2026-12-02T20:00:00Z"
    assert expiry.parse_tag("2026-12-02T20:00:00Z") == moment
    assert expiry.expires_at(None, NOON) is None


def test_a_missing_or_foreign_tag_is_never_expired():
    for value in (None, "", "tomorrow", "2026-12-02 20:00"):
        assert expiry.parse_tag(value) is None
        assert not expiry.is_expired(expiry.parse_tag(value), NOON)


def test_time_left_reads_like_a_person_would_say_it():
    assert expiry.describe_left(NOON + timedelta(hours=7, minutes=59, seconds=30), NOON) == \
        "expires 2026-12-02T19:59:30Z (in 7h 59m)"
    assert expiry.describe_left(NOON - timedelta(minutes=12), NOON) == "expired 2026-12-02T11:48:00Z (12m ago)"
    assert expiry.describe_left(NOON + timedelta(days=2, minutes=5), NOON).endswith("(in 2d 5m)")
    assert expiry.describe_left(None, NOON) == "never expires"
    assert expiry.is_expired(NOON, NOON) and not expiry.is_expired(NOON + timedelta(seconds=1), NOON)


def test_the_host_timer_powers_off_at_that_moment_in_utc_even_after_a_missed_one():
    units = expiry.timer_units(NOON + timedelta(hours=8))
    timer = units[expiry.TIMER_UNIT]
    assert "OnCalendar=2026-12-02 20:00:00 UTC" in timer and "Persistent=true" in timer
    assert "WantedBy=timers.target" in timer
    assert "ExecStart=/bin/systemctl poweroff" in units[expiry.SERVICE_UNIT]


def test_the_lab_keeps_its_expiry_until_the_configs_expires_after_changes():
    from lab.expiry import plan_expiry

    new = plan_expiry(timedelta(hours=8), "8h", {}, NOON)
    assert (new.expires_at, new.moved) == (NOON + timedelta(hours=8), False)
    assert new.tags() == {"lab:expires-at": "2026-12-02T20:00:00Z", "lab:expires-after": "8h"}
    tagged = {"i-1": new.tags(), "sg-1": new.tags()}
    later = NOON + timedelta(hours=3)
    same = plan_expiry(timedelta(hours=8), "8h", tagged, later)
    assert (same.expires_at, same.moved) == (NOON + timedelta(hours=8), False)  # a second up moves nothing
    changed = plan_expiry(timedelta(hours=2), "2h", tagged, later)
    assert (changed.expires_at, changed.moved) == (later + timedelta(hours=2), True)
    never = plan_expiry(None, "never", tagged, later)
    assert (never.expires_at, never.moved, never.tags()) == (None, True, {})
    untagged = {"i-1": {}, "sg-1": {}}  # made by a version without expiry: tagged now
    assert plan_expiry(timedelta(hours=8), "8h", untagged, later).moved
    assert not plan_expiry(None, "never", untagged, later).moved
