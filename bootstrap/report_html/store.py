"""report.json and report.html in .lab/<name>/: read what the page is made of, update one part, write both.

`lab install` replaces the timeline and `lab verify` the table, so the page made from
report.json always shows the last of each. Both files are 0600 and written whole
(labcore.paths.write_atomic). The read-update-write holds an flock on the lab's folder:
`lab verify` does not take the lab's lock, and may end while an install does.
A report.json that cannot be read (damaged, another format) is replaced, with a line;
a report that cannot be written is a line too, never the command's failure: the install or
verify it reports on has already happened.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from bootstrap.report_html.model import FORMAT, ReportData
from bootstrap.report_html.page import render_page
from labcore.paths import PRIVATE, LabPaths, Progress, make_dirs, read_bounded, write_atomic

DATA_NAME, PAGE_NAME = "report.json", "report.html"
MAX_DATA_BYTES = 16 * 1024 * 1024


def page_path(paths: LabPaths) -> Path:
    return paths.root / PAGE_NAME


def data_path(paths: LabPaths) -> Path:
    return paths.root / DATA_NAME


def load_data(paths: LabPaths, lab: str, progress: Progress) -> ReportData:
    """What report.json holds; an empty report for lab if there is none or it cannot be read."""
    path = data_path(paths)
    try:
        raw = read_bounded(path, MAX_DATA_BYTES)
    except FileNotFoundError:
        return ReportData(lab=lab)
    why = None
    if len(raw) > MAX_DATA_BYTES:
        why = f"larger than {MAX_DATA_BYTES // (1024 * 1024)} MiB"
    else:
        try:
            loaded = json.loads(raw)
            if isinstance(loaded, dict) and loaded.get("format") == FORMAT:
                return ReportData.model_validate(loaded)
            why = f"not a report of format {FORMAT}"
        except (ValueError, ValidationError) as exc:
            why = f"not valid ({type(exc).__name__})"
    progress(f"{path} is {why}: a new report replaces it")
    return ReportData(lab=lab)


def save(paths: LabPaths, data: ReportData) -> Path:
    """report.json, then the page made from it; the page's path."""
    write_atomic(data_path(paths), data.model_dump_json(indent=1), mode=PRIVATE)
    page = page_path(paths)
    write_atomic(page, render_page(data), mode=PRIVATE)
    return page


@contextmanager
def _folder_locked(folder: Path) -> Iterator[None]:
    make_dirs(folder)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def update(paths: LabPaths, lab: str, change: Callable[[ReportData], ReportData], progress: Progress) -> Path | None:
    """Apply change to what report.json holds and write both files; the page's path, or None (said in a line)."""
    try:
        with _folder_locked(paths.root):
            return save(paths, change(load_data(paths, lab, progress)))
    except OSError as exc:
        progress(f"could not write the report in {paths.root}: {exc.strerror or exc} "
                 f"(the run itself is done; free the disk or fix the folder's permissions)")
        return None
