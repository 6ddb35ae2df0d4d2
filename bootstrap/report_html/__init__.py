"""The lab's report page, .lab/<name>/report.html: the last install's timeline per host and
phase, and the last verify's table, in one self-contained file that opens from disk.

model.py builds the data (pure), page.py renders it (pure), store.py keeps report.json and
writes the page. The two functions here are what `lab install` and `lab verify` call.
"""

from __future__ import annotations

from pathlib import Path

from bootstrap.plan import Plan
from bootstrap.report import summary_line
from bootstrap.report_html.model import install_record, verify_record, with_install, with_verify
from bootstrap.report_html.store import page_path, update
from bootstrap.results import RunReport
from bootstrap.verify import CheckResult
from labcore.inventory import Inventory
from labcore.paths import LabPaths, Progress
from labcore.secrets import Secrets

__all__ = ["page_path", "write_conformance_report", "write_install_report", "write_verify_report"]


def write_install_report(paths: LabPaths, inventory: Inventory, report: RunReport, secrets: Secrets,
                         progress: Progress, plan: Plan | None = None) -> Path | None:
    """The install's timeline (a failed run's too, its failure shown) into the page; the page's path."""
    record = install_record(report, summary_line(report), plan=plan, inventory=inventory, mask=secrets.mask)
    return update(paths, inventory.lab, lambda data: with_install(data, record, inventory), progress)


def write_verify_report(paths: LabPaths, inventory: Inventory, results: list[CheckResult], secrets: Secrets,
                        progress: Progress) -> Path | None:
    """The verify table into the page, the last install's timeline kept; the page's path."""
    record = verify_record(results, mask=secrets.mask)
    return update(paths, inventory.lab, lambda data: with_verify(data, record, inventory), progress)


def write_conformance_report(paths: LabPaths, inventory: Inventory, found, secrets: Secrets,
                             progress: Progress) -> Path | None:
    """The last Tempest run (bootstrap.conformance.runner.Conformance) into the page; the page's path."""
    from bootstrap.report_html.conformance import conformance_record
    from bootstrap.report_html.model import now

    record = conformance_record(found.guideline, found.api, found.seconds, now(), secrets.mask)
    return update(paths, inventory.lab, lambda data: data.model_copy(update={"conformance": record}), progress)
