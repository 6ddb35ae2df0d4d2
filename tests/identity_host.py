"""A directory standing in for the controller's identity side, to run what the lab sends for real.

`mysql` answers from rules (regex on the query -> output), as Keystone's database would;
the openstack client is a stand-in that records the argv it is given; the batch program is
the real bootstrap/host/openstack_batch.py under the host's /usr/local/lib. So a test sees
exactly which `openstack` commands reach the client, word by word.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from fakes import LocalHost, fake_bin

from bootstrap.changes import Run
from bootstrap.hostprograms import HOST_DIR, source
from labcore.remote import RunResult

FAKE_MYSQL = '''exec {python} - "$@" <<'EOF'
import json, re, sys
query = sys.argv[-1]
for pattern, answer in json.load(open({rules!r})):
    if re.search(pattern, query):
        if answer is None:
            sys.exit("ERROR 2002 (HY000): Can't connect to local server")
        print(answer)
        break
else:
    if "count(" in query:  # what an empty database answers: 0 for a count, no rows otherwise
        print(0)
EOF'''

CLIENT = '''import json
class OpenStackShell(object):
    def run(self, argv):
        return self.run_subcommand(argv, how="run")
    def run_subcommand(self, argv, how="again"):
        with open({calls!r}, "a") as f:
            f.write(json.dumps([how] + list(argv)) + "\\n")
        return 1 if argv[:2] == ["role", "show"] else 0
'''


class IdentityHost:
    def __init__(self, root: Path, answers: list[tuple[str, str | None]] = ()):
        self.root = root
        self.calls = root / "calls.jsonl"
        self.rules = root / "mysql-rules.json"
        self.answer(answers)
        lib = root / "pylib" / "openstackclient"
        lib.mkdir(parents=True)
        (lib / "__init__.py").write_text("")
        (lib / "shell.py").write_text(CLIENT.format(calls=str(self.calls)))
        bin_dir = fake_bin(root / "bin", {"mysql": FAKE_MYSQL.format(python=sys.executable, rules=str(self.rules)),
                                          "python": f'exec {sys.executable} "$@"'})
        self.host = LocalHost("controller", root / "host", bin_dir, env={"PYTHONPATH": str(root / "pylib")})
        self.host.write(f"{HOST_DIR}/openstack_batch.py", source("openstack_batch.py"))
        self.host.write("/root/admin-openrc", "export OS_USERNAME=admin\n")

    def answer(self, answers: list[tuple[str, str | None]]) -> None:
        """Rules, first match wins: regex on the SQL -> what mysql prints (None: mysql fails)."""
        self.rules.write_text(json.dumps(list(answers)))

    def sh(self, command: str, stdin: str | None = None) -> RunResult:
        return self.host.run(command, stdin=stdin)

    def send(self, sends) -> list[RunResult]:
        """Run the Run sends in order, stopping at the first that fails."""
        self.calls.unlink(missing_ok=True)
        results = []
        for send in sends:
            assert isinstance(send, Run), send
            results.append(self.sh(send.command, send.stdin))
            if not results[-1].ok:
                break
        return results

    def sent(self) -> list[list[str]]:
        """The argv the client was given, in order (without how it was called)."""
        if not self.calls.exists():
            return []
        return [json.loads(line)[1:] for line in self.calls.read_text().splitlines()]

    def install(self, step, tmp_path, secrets=None):
        """The step through the real runner: its facts asked here, its sends run here."""
        from plan_fixtures import inventory

        from bootstrap.plan import Plan
        from bootstrap.runner import run_plan
        from labcore.secrets import Secrets

        self.calls.unlink(missing_ok=True)
        return run_plan(Plan((step,)), inventory(), lambda node: self.host, secrets or Secrets({}),
                        log_dir=tmp_path / "logs", progress=lambda line: None)

    def stamps(self) -> list[str]:
        found = self.host.path("/var/lib/lab")
        return sorted(os.listdir(found)) if found.exists() else []
