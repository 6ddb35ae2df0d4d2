"""The front door's server key and certificate in .lab/<name>/ (labcore/front_door_cert.py): made once,
kept while they fit the door, made again when the door's names, the lab's CA or the calendar say so;
and no private key ever shown (issue 23)."""

from __future__ import annotations

import json
import stat
from datetime import datetime, timedelta, timezone

from bootstrap.decide import unified_diff
from labcore import front_door_cert, lab_ca
from labcore.front_door import FrontDoor
from labcore.secrets import MASK, Secrets

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=timezone.utc)
AWS = FrontDoor("ec2-3-35-1-2.ap-northeast-2.compute.amazonaws.com",
                ("ec2-3-35-1-2.ap-northeast-2.compute.amazonaws.com",), ("3.35.1.2",))
TWIN = FrontDoor("10.99.0.11", (), ("10.99.0.11",))


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _body_lines(pem: bytes) -> list[str]:
    return [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]


def test_the_first_install_makes_a_pair_for_the_doors_names_key_0600_and_the_next_keeps_it(tmp_path):
    pair, made = front_door_cert.ensure(tmp_path, "lab1", AWS, NOW)
    key, cert = front_door_cert.paths(tmp_path)

    assert made and key.read_bytes() == pair.key_pem and cert.read_bytes() == pair.cert_pem
    assert (_mode(key), _mode(cert), _mode(tmp_path / lab_ca.CA_KEY)) == (0o600, 0o644, 0o600)
    assert lab_ca.names_in(pair.cert_pem) == ({AWS.host}, {"3.35.1.2"})
    again, made_again = front_door_cert.ensure(tmp_path, "lab1", AWS, NOW + timedelta(days=10))
    assert not made_again and again == pair


def test_a_new_public_address_the_end_near_or_a_new_ca_make_it_again(tmp_path):
    first, _ = front_door_cert.ensure(tmp_path, "lab1", AWS, NOW)
    moved = FrontDoor(AWS.host, AWS.names, ("3.35.9.9",))  # stopped and started: a new public IP
    second, made = front_door_cert.ensure(tmp_path, "lab1", moved, NOW)
    assert made and second.key_pem != first.key_pem and lab_ca.names_in(second.cert_pem)[1] == {"3.35.9.9"}

    late = NOW + timedelta(days=lab_ca.SERVER_DAYS) - front_door_cert.RENEW_BEFORE + timedelta(hours=1)
    assert "ends on" in front_door_cert.why_not(second, moved, (tmp_path / lab_ca.CA_CERT).read_bytes(), late)
    third, made = front_door_cert.ensure(tmp_path, "lab1", moved, late)
    assert made and third.certificate.not_valid_after_utc > late + timedelta(days=300)

    for name in (lab_ca.CA_KEY, lab_ca.CA_CERT):  # a lab made again under the same name: a new CA
        (tmp_path / name).unlink()
    fourth, made = front_door_cert.ensure(tmp_path, "lab1", moved, late)
    assert made and fourth.certificate.issuer == lab_ca.ensure_ca(tmp_path, "lab1", late).certificate.subject
    fourth.certificate.verify_directly_issued_by(lab_ca.ensure_ca(tmp_path, "lab1", late).certificate)


def test_plan_and_check_only_read_what_is_stored_and_write_nothing(tmp_path):
    assert front_door_cert.for_plan(tmp_path, "lab1", TWIN, NOW, make=False) == (None, None, False)
    assert list(tmp_path.iterdir()) == []

    lab_ca.ensure_ca(tmp_path, "lab1", NOW)  # `lab up` made the CA; no install yet
    pair, ca, made = front_door_cert.for_plan(tmp_path, "lab1", TWIN, NOW, make=False)
    assert pair is None and ca == (tmp_path / lab_ca.CA_CERT).read_bytes() and not made
    assert sorted(p.name for p in tmp_path.iterdir()) == [lab_ca.CA_KEY, lab_ca.CA_CERT]

    made_pair, _, made = front_door_cert.for_plan(tmp_path, "lab1", TWIN, NOW, make=True)
    assert made and front_door_cert.for_plan(tmp_path, "lab1", TWIN, NOW, make=False)[0] == made_pair


def test_a_damaged_stored_certificate_is_made_again(tmp_path):
    front_door_cert.ensure(tmp_path, "lab1", TWIN, NOW)
    _, cert = front_door_cert.paths(tmp_path)
    cert.write_text("not a certificate\n")
    assert front_door_cert.stored(tmp_path, TWIN, NOW) is None
    pair, made = front_door_cert.ensure(tmp_path, "lab1", TWIN, NOW)
    assert made and lab_ca.names_in(pair.cert_pem) == (set(), {"10.99.0.11"})


def test_the_masking_hides_every_private_key_in_plan_json_and_in_a_diff_of_two_keys(tmp_path):
    old, _ = front_door_cert.ensure(tmp_path, "lab1", AWS, NOW)
    new = lab_ca.server_cert(lab_ca.ensure_ca(tmp_path, "lab1", NOW), list(AWS.names), list(AWS.addresses), NOW)
    secrets = front_door_cert.key_masking(Secrets({"admin_pass": "0123456789abcdef"}))

    diff = secrets.mask(unified_diff("/etc/ssl/private/door.key", old.key_pem, new.key_pem))
    shown = secrets.mask(json.dumps({"content": new.key_pem.decode(), "pw": "0123456789abcdef"}))
    shown = secrets.mask(json.loads(json.dumps({"content": new.key_pem.decode()}))["content"]) + shown
    for line in _body_lines(old.key_pem) + _body_lines(new.key_pem):
        assert line not in diff and line not in shown
    assert MASK in diff and "-----BEGIN PRIVATE KEY-----" in diff and "0123456789abcdef" not in shown
    assert "0123456789abcdef" not in repr(secrets) and "hides_keys" not in repr(secrets)
    assert secrets["admin_pass"] == "0123456789abcdef"
    assert front_door_cert.key_masking(secrets) is secrets
    # a certificate is public: left as it is
    assert secrets.mask(new.cert_pem.decode()) == new.cert_pem.decode()
