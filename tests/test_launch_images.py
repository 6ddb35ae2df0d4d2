"""Which image `lab up --target aws` boots: the OS's official account, the newest fit, deprecated included.

moto keeps no deprecation time on an image and ignores IncludeDeprecated (an entry of
MOTO_AMIS_PATH may not even carry one), so what AWS does with deprecated images is played
by a hook here: DescribeImages leaves them out unless the request asks for them.
"""

from __future__ import annotations

import pytest
from launch_fixtures import (  # noqa: F401 - ec2 and moto_images are fixtures
    BIONIC,
    CALLER,
    CONFIG,
    IMAGES,
    NEWEST_BIONIC,
    NEWEST_DEBIAN,
    REGION,
    Answers,
    ec2,
    lab_instances,
    moto_images,
    on_every_client,
    run_up,
    spec_with,
    tags,
    use_images,
)

from lab import cli
from lab.images import CANONICAL_OWNER, DEBIAN_OWNER, OFFICIAL_IMAGES
from labcore.paths import LabPaths

DEBIAN_CONFIG = CONFIG.replace("os: ubuntu-18.04", "os: debian-12")


def _describe_images(monkeypatch) -> Answers:
    """Every DescribeImages the lab sends, as it sent it (let through to moto)."""
    return Answers(monkeypatch, "DescribeImages", lambda params: None)


def test_ubuntu_lab_boots_canonicals_newest_bionic_amd64_hvm_ebs_server_image(ec2, monkeypatch):
    # IMAGES holds newer bionic images that are arm64, instance-store, paravirtual, pending, or
    # not Canonical's: each is passed over for the newest that fits.
    seen = _describe_images(monkeypatch)
    run_up(spec_with())
    assert {i["ImageId"] for i in lab_instances(ec2)} == {NEWEST_BIONIC}
    (request,) = seen.calls
    assert request["Owners"] == [CANONICAL_OWNER] and request["IncludeDeprecated"] is True
    filters = {f["Name"]: f["Values"] for f in request["Filters"]}
    assert filters == {"name": [BIONIC.format("*")], "state": ["available"], "architecture": ["x86_64"],
                       "virtualization-type": ["hvm"], "root-device-type": ["ebs"]}


def _hide_deprecated(monkeypatch, deprecated: set[str]) -> None:
    """EC2's rule: DescribeImages leaves deprecated images out unless IncludeDeprecated is true."""

    def remember(params, context, **_):
        context["include_deprecated"] = bool(params.get("IncludeDeprecated"))

    def hide(parsed, context, **_):
        if not context.get("include_deprecated"):
            parsed["Images"] = [i for i in parsed.get("Images", []) if i["ImageId"] not in deprecated]

    def register(client):
        client.meta.events.register("before-parameter-build.ec2.DescribeImages", remember)
        client.meta.events.register("after-call.ec2.DescribeImages", hide)

    on_every_client(monkeypatch, register)


def test_every_ubuntu_1804_image_is_deprecated_and_the_lab_still_finds_the_newest(ec2, monkeypatch):
    _hide_deprecated(monkeypatch, {i["ami_id"] for i in IMAGES if "bionic" in i["name"]})
    from lab.target import AwsTarget

    probe = AwsTarget().ec2_client(REGION)  # the same EC2, asked as a lookup without the flag would ask
    query = OFFICIAL_IMAGES["ubuntu-18.04"].describe_args()
    assert probe.describe_images(**{**query, "IncludeDeprecated": False})["Images"] == []
    run_up(spec_with())
    assert {i["ImageId"] for i in lab_instances(ec2)} == {NEWEST_BIONIC}


def test_debian_12_lab_boots_debians_newest_image_and_logs_in_as_admin(ec2, monkeypatch):
    seen = _describe_images(monkeypatch)
    report = run_up(spec_with(text=DEBIAN_CONFIG))
    nodes = lab_instances(ec2)
    assert {i["ImageId"] for i in nodes} == {NEWEST_DEBIAN}  # not the newer backports or Debian 11 images
    assert seen.calls[0]["Owners"] == [DEBIAN_OWNER] and seen.calls[0]["IncludeDeprecated"] is True
    assert {tags(i)["lab:ssh-user"] for i in nodes} == {"admin"}
    assert {n.ssh_user for n in report.inventory.nodes} == {"admin"} and report.inventory.os == "debian-12"
    # Debian's root device is /dev/xvda: the root volume the lab sizes and tags is that one.
    for instance in nodes:
        root = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance["InstanceId"]]},
                                             {"Name": "tag:lab:volume", "Values": ["root"]}])["Volumes"]
        assert [(v["Attachments"][0]["Device"], v["Size"]) for v in root] == [("/dev/xvda", 20)]
    assert "User admin" in LabPaths.for_lab("rocky-lab").ssh_config.read_text()


def test_ssh_user_in_the_config_wins_over_the_images_own(ec2):
    report = run_up(spec_with(text=DEBIAN_CONFIG.replace("ssh: {", "ssh: {user: debian, ")))
    assert {tags(i)["lab:ssh-user"] for i in lab_instances(ec2)} == {"debian"}
    assert {n.ssh_user for n in report.inventory.nodes} == {"debian"}


def test_ami_is_looked_up_by_id_with_deprecated_images_included(ec2, monkeypatch):
    older = "ami-0b10000000000101"
    seen = _describe_images(monkeypatch)
    _hide_deprecated(monkeypatch, {older})
    run_up(spec_with(f"ami: {older}\n"))
    assert {i["ImageId"] for i in lab_instances(ec2)} == {older}
    assert seen.calls == [{"ImageIds": [older], "IncludeDeprecated": True}]


def _cli_up(tmp_path, text: str, capsys) -> tuple[int, str]:
    config = tmp_path / "lab.yaml"
    config.write_text(text.replace("allow_from: [auto]", f"allow_from: [{CALLER}]"))
    code = cli.main(["up", "--no-ssh", "--config", str(config), "--target", "aws"])
    return code, capsys.readouterr().err


def _nothing_created(ec2) -> bool:
    lab = [{"Name": "tag:lab:name", "Values": ["rocky-lab"]}]
    return (lab_instances(ec2) == [] and ec2.describe_key_pairs(Filters=lab)["KeyPairs"] == []
            and ec2.describe_security_groups(Filters=lab)["SecurityGroups"] == []
            and ec2.describe_volumes(Filters=lab)["Volumes"] == [])


def test_unknown_ami_is_exit_2_in_one_line_saying_how_to_find_one_and_creates_nothing(ec2, tmp_path, capsys):
    code, err = _cli_up(tmp_path, CONFIG + "ami: ami-0123456789abcdef0\n", capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"ami ami-0123456789abcdef0 does not exist in {REGION}; fix `ami:` in the config" in err
    assert f"aws ec2 describe-images --region {REGION} --owners {CANONICAL_OWNER} --include-deprecated" in err
    assert _nothing_created(ec2)


@pytest.mark.parametrize("os_name,owner", [("ubuntu-18.04", CANONICAL_OWNER), ("debian-12", DEBIAN_OWNER)])
def test_no_image_of_the_os_is_exit_2_in_one_line_saying_how_to_find_one(monkeypatch, tmp_path, capsys, ec2,
                                                                          os_name, owner):
    use_images(monkeypatch, tmp_path / "xenial-only.json", [i for i in IMAGES if "xenial" in i["name"]])
    text = CONFIG if os_name == "ubuntu-18.04" else DEBIAN_CONFIG
    code, err = _cli_up(tmp_path, text, capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"no {OFFICIAL_IMAGES[os_name].what} image found in {REGION}" in err and "set `ami:`" in err
    assert f"--owners {owner} --include-deprecated" in err and "sort_by(Images,&CreationDate)" in err
    assert _nothing_created(ec2)


def test_an_image_that_is_not_available_is_refused_by_name(ec2, monkeypatch, tmp_path):
    pending = "ami-0b10000000000604"
    from labcore.errors import LabError

    with pytest.raises(LabError, match=f"ami {pending} in {REGION} is pending, not available"):
        run_up(spec_with(f"ami: {pending}\n"))
    assert lab_instances(ec2) == []
