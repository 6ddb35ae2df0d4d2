"""bootstrap/host/openstack_batch.py, run for real on every interpreter a profile sends it to.

The host has a fake `openstackclient.shell` (records which method got which argv, in which
process and shell) and a fake `mysql` on PATH answering per query, as Keystone's database would.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from interpreters import on, run

FAKE_SHELL = '''
import json, os, sys
CALLS = os.environ["FAKE_OSC_CALLS"]

def record(**what):
    with open(CALLS, "a") as f:
        f.write(json.dumps(what) + "\\n")

record(event="import")

class OpenStackShell(object):
    def _call(self, method, argv):
        record(event=method, argv=argv, pid=os.getpid(), shell=id(self), user=os.environ.get("OS_USERNAME"))
        words = " ".join(argv)
        if words.startswith(os.environ.get("FAKE_OSC_FAIL") or "\\0"):
            return 2
        if words.startswith(os.environ.get("FAKE_OSC_RAISE") or "\\0"):
            raise RuntimeError("the client broke")
        if words.startswith(os.environ.get("FAKE_OSC_EXIT") or "\\0"):
            sys.exit(2)
        return 0

    def run(self, argv):
        return self._call("run", argv)

    def run_subcommand(self, argv):
        return self._call("run_subcommand", argv)
'''

FAKE_MYSQL = '''#!{python}
import json, sys
with open({log!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
answers = json.load(open({answers!r}))
query = sys.argv[-1]
if query in answers:
    if answers[query] is None:
        sys.exit("ERROR 2002 (HY000): Can't connect to local MySQL server")
    print(answers[query])
else:
    print(0)
'''

EXISTS_DOMAIN = "SELECT count(*) FROM project WHERE is_domain=1 AND name='example'"
EXISTS_PROJECT = "SELECT count(*) FROM project WHERE is_domain=0 AND name='myproject'"
EXISTS_USER = "SELECT count(*) FROM local_user WHERE name='myuser'"
EXISTS_ROLE = "SELECT count(*) FROM role WHERE name='myrole'"
SECRET = "s3cret-Demo-Pass"

GUIDE = [
    {"argv": ["domain", "create", "--description", "An Example Domain", "example"], "unless": EXISTS_DOMAIN},
    {"argv": ["project", "create", "--domain", "default", "--description", "Demo Project", "myproject"],
     "unless": EXISTS_PROJECT},
    {"argv": ["user", "create", "--domain", "default", "--password", SECRET, "myuser"], "unless": None,
     "set_if": EXISTS_USER, "set_argv": ["user", "set", "--password", SECRET, "myuser"]},
    {"argv": ["role", "create", "myrole"], "unless": EXISTS_ROLE},
    {"argv": ["role", "add", "--project", "myproject", "--user", "myuser", "myrole"]},
]


class Controller:
    """A directory standing in for the controller: PATH with mysql, PYTHONPATH with the client."""

    def __init__(self, root: Path):
        self.calls, self.mysql_log, self.answers = root / "calls.jsonl", root / "mysql.jsonl", root / "answers.json"
        client = root / "site" / "openstackclient"
        client.mkdir(parents=True)
        (client / "__init__.py").write_text("")
        (client / "shell.py").write_text(FAKE_SHELL)
        bin_dir = root / "bin"
        bin_dir.mkdir()
        mysql = bin_dir / "mysql"
        mysql.write_text(FAKE_MYSQL.format(python=sys.executable, log=str(self.mysql_log), answers=str(self.answers)))
        mysql.chmod(0o755)
        self.env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(root / "site"),
                    "FAKE_OSC_CALLS": str(self.calls), "OS_USERNAME": "admin"}
        self.database({})

    def database(self, answers: dict) -> None:
        """What each query prints (None: mysql fails); any other query counts 0."""
        self.answers.write_text(json.dumps(answers))

    def batch(self, version, entries, *args, **env):
        stdin = entries if isinstance(entries, str) else json.dumps(entries)
        return run(version, "openstack_batch.py", *args, stdin=stdin, env={**self.env, **env})

    def recorded(self) -> list[dict]:
        if not self.calls.exists():
            return []
        return [json.loads(line) for line in self.calls.read_text().splitlines()]

    def commands(self) -> list[tuple[str, list[str]]]:
        return [(c["event"], c["argv"]) for c in self.recorded() if c["event"] != "import"]

    def queries(self) -> list[list[str]]:
        if not self.mysql_log.exists():
            return []
        return [json.loads(line) for line in self.mysql_log.read_text().splitlines()]


@pytest.fixture
def controller(tmp_path):
    return Controller(tmp_path)


@on()
def test_batch_runs_only_what_the_database_lacks_in_one_client_process(controller, version):
    controller.database({EXISTS_DOMAIN: "1", EXISTS_USER: "1", EXISTS_ROLE: None})
    result = controller.batch(version, GUIDE)
    assert result.returncode == 0, result.stderr
    assert controller.commands() == [
        ("run", ["project", "create", "--domain", "default", "--description", "Demo Project", "myproject"]),
        ("run_subcommand", ["user", "set", "--password", SECRET, "myuser"]),  # the user exists: set
        ("run_subcommand", ["role", "create", "myrole"]),  # the query failed: not known to exist
        ("run_subcommand", ["role", "add", "--project", "myproject", "--user", "myuser", "myrole"]),
    ]
    calls = [c for c in controller.recorded() if c["event"] != "import"]
    assert len({(c["pid"], c["shell"]) for c in calls}) == 1  # one process, one shell, one token
    assert {c["user"] for c in calls} == {"admin"}  # the credentials come from the environment
    assert controller.queries()[0] == ["-N", "-B", "keystone", "-e", EXISTS_DOMAIN]
    assert SECRET not in result.stdout + result.stderr


@on()
def test_batch_creates_a_user_that_does_not_exist(controller, version):
    result = controller.batch(version, GUIDE[2:3])
    assert result.returncode == 0, result.stderr
    assert controller.commands() == [("run", ["user", "create", "--domain", "default", "--password", SECRET,
                                              "myuser"])]


@on()
def test_batch_check_lists_what_would_run_with_passwords_masked_and_exits_3(controller, version):
    controller.database({EXISTS_DOMAIN: "1", EXISTS_USER: "2"})
    result = controller.batch(version, GUIDE, "--check")
    assert result.returncode == 3, result.stderr
    assert result.stdout.splitlines() == [
        "openstack project create --domain default --description 'Demo Project' myproject",
        "openstack user set --password ******** myuser",
        "openstack role create myrole",
        "openstack role add --project myproject --user myuser myrole",
    ]
    assert controller.recorded() == []  # the client was not even imported
    assert SECRET not in result.stdout + result.stderr


@on()
def test_batch_check_masks_password_given_with_equals(controller, version):
    entries = [{"argv": ["user", "create", f"--password={SECRET}", "myuser"]}]
    result = controller.batch(version, entries, "--check")
    assert (result.returncode, result.stdout) == (3, "openstack user create --password=******** myuser\n")


@on()
def test_batch_with_nothing_to_do_exits_0_without_starting_the_client(controller, version):
    controller.database({EXISTS_DOMAIN: "1", EXISTS_PROJECT: "1", EXISTS_ROLE: "1"})
    entries = [e for e in GUIDE if e.get("unless")]
    check = controller.batch(version, entries, "--check")
    assert (check.returncode, check.stdout, check.stderr) == (0, "", "")
    result = controller.batch(version, entries)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert controller.recorded() == []


@on()
def test_batch_stops_at_the_first_failing_command(controller, version):
    result = controller.batch(version, GUIDE, FAKE_OSC_FAIL="project create")
    assert result.returncode == 1
    assert result.stderr == "openstack project create ...: exit 2\n"
    assert [argv[:2] for _, argv in controller.commands()] == [["domain", "create"], ["project", "create"]]


@on()
def test_batch_reports_a_client_exception_in_one_line(controller, version):
    result = controller.batch(version, GUIDE, FAKE_OSC_RAISE="role create")
    assert result.returncode == 1
    assert result.stderr == "openstack role create ...: RuntimeError: the client broke\n"
    assert "Traceback" not in result.stderr


@on()
def test_batch_reports_a_client_that_exits_on_a_bad_option(controller, version):
    result = controller.batch(version, GUIDE, FAKE_OSC_EXIT="domain create")
    assert (result.returncode, result.stderr) == (1, "openstack domain create ...: exit 2\n")


@on()
def test_batch_without_the_client_says_so_in_one_line(controller, version):
    result = controller.batch(version, GUIDE[:1], PYTHONPATH="")
    assert result.returncode == 1
    assert result.stderr.startswith("openstack domain create ...: the openstack client is not installed for ")
    assert len(result.stderr.splitlines()) == 1


@on()
@pytest.mark.parametrize("stdin, expected", [
    ("domain create example", "stdin is not JSON"),
    ('{"argv": ["role", "create", "x"]}', "stdin: expected a JSON list of commands"),
    ('[{"argv": []}]', "stdin: entry 0: expected"),
    ('[{"argv": ["role", "create", 3]}]', "stdin: entry 0: every word of argv and set_argv must be a string"),
    ('[{"argv": ["role", "create", "x"], "set_if": "SELECT 1"}]', "stdin: entry 0: set_if needs set_argv"),
    ('[{"argv": ["role", "create", "x"], "unlesss": "SELECT 1"}]', "stdin: entry 0: unknown key unlesss"),
    ('[{"argv": ["role", "create", "x"], "unless": 1}]', "stdin: entry 0: unless must be an SQL query"),
])
def test_batch_refuses_bad_input_with_exit_2_and_runs_nothing(controller, version, stdin, expected):
    result = controller.batch(version, stdin)
    assert result.returncode == 2
    assert result.stderr.startswith(f"openstack_batch.py: {expected}"), result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert controller.recorded() == [] and controller.queries() == []


@on()
def test_batch_refuses_unknown_arguments(controller, version):
    result = controller.batch(version, GUIDE, "--dry-run")
    assert (result.returncode, result.stderr) == (2, "usage: openstack_batch.py [--check] < commands.json\n")
    assert controller.recorded() == []
