"""A directory standing in for the controller, to run the identity steps' shell for real.

`mysql` answers from rules (regex on the query -> output), like Keystone's database would;
the batch driver is replaced by a recorder, so a test sees exactly which `openstack`
commands a step sends, word by word as the real driver would split them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from bootstrap.components import openstack_batch
from bootstrap.context import STAMP_DIR
from bootstrap.plan import Step

FAKE_MYSQL = '''#!{python}
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
'''

RECORDER = '''import json, shlex, sys
calls = [shlex.split(line) for line in sys.stdin if line.strip()]
with open({calls!r}, "a") as f:
    for argv in calls:
        f.write(json.dumps(argv) + "\\n")
'''


class IdentityHost:
    def __init__(self, root: Path, answers: list[tuple[str, str | None]] = ()):
        self.root = root
        self.calls = root / "calls.jsonl"
        self.rules = root / "mysql-rules.json"
        self.answer(answers)
        (root / "mysql").write_text(FAKE_MYSQL.format(python=sys.executable, rules=str(self.rules)))
        (root / "mysql").chmod(0o755)
        (root / "recorder.py").write_text(RECORDER.format(calls=str(self.calls)))
        (root / "admin-openrc").write_text("export OS_USERNAME=admin\n")
        self.env = {**os.environ, "PATH": f"{root}:{os.environ['PATH']}"}

    def answer(self, answers: list[tuple[str, str | None]]) -> None:
        """Rules, first match wins: regex on the SQL -> what mysql prints (None: mysql fails)."""
        self.rules.write_text(json.dumps(list(answers)))

    def sh(self, text: str) -> subprocess.CompletedProcess:
        text = re.sub(rf"\S+ {re.escape(openstack_batch.BATCH)}", f"{sys.executable} {self.root / 'recorder.py'}",
                      text)
        text = text.replace("/root/admin-openrc", str(self.root / "admin-openrc"))
        text = text.replace(STAMP_DIR, str(self.root / "stamps"))
        return subprocess.run(["sh", "-c", text], env=self.env, capture_output=True, text=True)

    def run(self, step: Step) -> list[list[str]]:
        """Run the step's commands in order (stopping at a failure); the openstack commands it sent."""
        self.calls.unlink(missing_ok=True)
        for command in step.commands:
            result = self.sh(command)
            if result.returncode != 0:
                break
        return self.sent()

    def sent(self) -> list[list[str]]:
        if not self.calls.exists():
            return []
        return [json.loads(line) for line in self.calls.read_text().splitlines()]


def words(command: str) -> list[str]:
    return shlex.split(command)
