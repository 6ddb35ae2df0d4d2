"""The lab's own CA and the front door's certificate, proven by real TLS handshakes on 127.0.0.1 (issue 23)."""

from __future__ import annotations

import socket
import ssl
import stat
import subprocess
import threading
from datetime import datetime, timezone

import pytest

from labcore import lab_ca
from labcore.paths import StateFileError

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=timezone.utc)
SERVER_SIDE_ERRORS: list[Exception] = []  # kept for a failing test's report
PUBLIC_NAME = "ec2-3-35-1-2.ap-northeast-2.compute.amazonaws.com"


def _serve_once(server: lab_ca.KeyAndCert, tmp_path) -> int:
    (tmp_path / "server.pem").write_bytes(server.cert_pem)
    (tmp_path / "server-key.pem").write_bytes(server.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server-key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def accept() -> None:
        try:
            conn, _ = listener.accept()
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as refused:  # the client refused the certificate; the client side asserts
            SERVER_SIDE_ERRORS.append(refused)
        finally:
            listener.close()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


def _handshake(port: int, ca_pem: bytes, server_hostname: str) -> bytes:
    context = ssl.create_default_context(cadata=ca_pem.decode())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=server_hostname) as tls:
            return tls.recv(2)


@pytest.fixture(scope="module")
def ca() -> lab_ca.KeyAndCert:
    return lab_ca.make_ca("rocky-lab", datetime.now(timezone.utc))


@pytest.fixture(scope="module")
def front_door(ca) -> lab_ca.KeyAndCert:
    return lab_ca.server_cert(ca, [PUBLIC_NAME], ["127.0.0.1", "3.35.1.2"], datetime.now(timezone.utc))


@pytest.mark.parametrize("reached_by", [PUBLIC_NAME, "127.0.0.1"])
def test_a_client_trusting_the_lab_ca_accepts_the_front_door_by_name_and_by_address(ca, front_door, tmp_path,
                                                                                     reached_by):
    assert _handshake(_serve_once(front_door, tmp_path), ca.cert_pem, reached_by) == b"ok"


def test_a_name_the_certificate_does_not_hold_is_refused(ca, front_door, tmp_path):
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(_serve_once(front_door, tmp_path), ca.cert_pem, "controller")


def test_another_labs_ca_does_not_vouch_for_this_front_door(front_door, tmp_path):
    other = lab_ca.make_ca("other-lab", datetime.now(timezone.utc))
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        _handshake(_serve_once(front_door, tmp_path), other.cert_pem, PUBLIC_NAME)


def test_openssl_verifies_the_chain_for_server_use(ca, front_door, tmp_path):
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    (tmp_path / "server.pem").write_bytes(front_door.cert_pem)
    done = subprocess.run(["openssl", "verify", "-purpose", "sslserver", "-CAfile", str(tmp_path / "ca.pem"),
                           str(tmp_path / "server.pem")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_ca_signs_but_cannot_make_another_ca(ca):
    constraints = ca.certificate.extensions.get_extension_for_class(lab_ca.x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    assert "rocky-lab lab CA" in ca.certificate.subject.rfc4514_string()


def test_names_in_reads_back_what_the_certificate_is_valid_for(front_door):
    assert lab_ca.names_in(front_door.cert_pem) == ({PUBLIC_NAME}, {"127.0.0.1", "3.35.1.2"})


def test_a_certificate_for_nothing_is_refused(ca):
    with pytest.raises(ValueError, match="at least one name or address"):
        lab_ca.server_cert(ca, [], [], NOW)


def test_the_key_never_shows_in_repr(ca):
    assert "PRIVATE" not in repr(ca) and "<hidden>" in repr(ca)


def test_ensure_ca_makes_the_key_0600_and_the_certificate_0644_once(tmp_path):
    first = lab_ca.ensure_ca(tmp_path, "rocky-lab", NOW)
    assert stat.S_IMODE((tmp_path / lab_ca.CA_KEY).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / lab_ca.CA_CERT).stat().st_mode) == 0o644
    again = lab_ca.ensure_ca(tmp_path, "rocky-lab", NOW)
    assert again.key_pem == first.key_pem and again.cert_pem == first.cert_pem


def test_a_key_written_by_a_concurrent_run_is_kept_and_certified(tmp_path):
    winner = lab_ca.make_ca("rocky-lab", NOW)
    (tmp_path / lab_ca.CA_KEY).write_bytes(winner.key_pem)
    kept = lab_ca.ensure_ca(tmp_path, "rocky-lab", NOW)
    assert kept.key_pem == winner.key_pem
    assert kept.certificate.public_key().public_numbers() == winner.key.public_key().public_numbers()


def test_a_damaged_key_is_one_line_naming_the_file(tmp_path):
    (tmp_path / lab_ca.CA_KEY).write_text("not a key")
    (tmp_path / lab_ca.CA_CERT).write_text("not a certificate")
    with pytest.raises(StateFileError, match=r"ca-key.pem is not a PEM private key"):
        lab_ca.ensure_ca(tmp_path, "rocky-lab", NOW)


def test_a_certificate_of_another_key_is_one_line_naming_both(tmp_path):
    lab_ca.ensure_ca(tmp_path, "rocky-lab", NOW)
    (tmp_path / lab_ca.CA_CERT).write_bytes(lab_ca.make_ca("rocky-lab", NOW).cert_pem)
    with pytest.raises(StateFileError, match=r"ca.pem does not belong to .*ca-key.pem"):
        lab_ca.ensure_ca(tmp_path, "rocky-lab", NOW)
