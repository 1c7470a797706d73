"""The audit's machinery: a `Case`, how one is run, and how its outcome is classified.

A case is one malformed (or valid but unusual) input to one command. `run_case` writes the
case's files into a fresh directory, runs the command there as its own process (so a raw
traceback, a crash or a hang is seen exactly as a user would see it), and compares the
directory before and after. `classify` turns that into the columns of the audit table:

- clean: the promise held. For an input that must be refused: exit 2, no traceback, a
  message that holds every string in `names` (the file, option or key) and a fix, and the
  directory exactly as it was. For a valid input: exit 0 (and the case's own check).
- traceback: a Python traceback on stderr, or an exit status other than 0 and 2.
- hang: no exit within the case's timeout (the process group is killed).
- silent accept: an input that must be refused ran to exit 0.
- left files: a run that did not exit 0 added, removed or changed a file.
- wrong refusal: a valid input was refused.
- unclear: exit 2, but the message misses a name or a fix.
- check failed: the case's own check of the result failed (e.g. a payload ran, a valid run
  wrote no table). A refusal's check runs too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: a directory no one may write into, not even root (who ignores permissions): the runs
#: of the read-only cases go there
READ_ONLY = "/sys/deepalign-audit" if os.geteuid() == 0 else "/deepalign-audit"

# a file's content: text, bytes, or a function that writes `path` (it may read fixtures)
Content = str | bytes | Callable[[Path, Path], None]

# words that say how to fix the input, either as an instruction ("Fix: ...", "pass ...")
# or by saying what a valid input is ("expected one of [...]", "should be at least 1");
# every refusal must hold one of them
FIX_WORDS = ("fix", "expected", "should", "must", "use ", "pass ", "give ", "remove",
             "rename", "set ", "choose", "raise ", "write ", "add ", "drop ", "list ",
             "save ", "leave ", "delete ", "replace ", "correct ", "declare ", "keep ",
             "wait ", "free ", "move ", "retry", "re-run", "rerun", "install ", "re-export",
             "upgrade", "copy ", "restore", "point ", "run `")

COLUMNS = ("tried", "clean", "traceback", "hang", "silent accept", "left files",
           "wrong refusal", "unclear", "check failed")


@dataclass(frozen=True)
class Case:
    """One input to one command.

    `command` is a module and its arguments (`("deepalign.data", "validate", "items.csv")`),
    run with the case directory as the working directory; "{fx}" in an argument is replaced
    by the fixtures directory (valid files built once per audit). `files` are written into
    the case directory first. `names`: the strings a refusal must hold (default: the first
    file's name). `check(case_dir, output)` returns what is wrong with the result (or None);
    it runs after an accepted run, and after any run of an input that must be refused.
    `setup(case_dir, fx)` runs after the files are written (e.g. to chmod).
    """

    id: str
    command: tuple[str, ...]
    files: Mapping[str, Content] = field(default_factory=dict)
    expect: str = "refuse"
    names: tuple[str, ...] = ()
    check: Callable[[Path, str], str | None] | None = None
    setup: Callable[[Path, Path], None] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 180.0
    note: str = ""

    def required_names(self) -> tuple[str, ...]:
        if self.names:
            return self.names
        return (Path(next(iter(self.files))).name,) if self.files else ()


@dataclass
class Outcome:
    case: Case
    surface: str
    returncode: int | None
    output: str
    seconds: float
    changed: list[str]
    problem: str | None = None  # what the case's own check found wrong

    @property
    def columns(self) -> dict[str, bool]:
        out = self.output
        hang = self.returncode is None
        traceback = not hang and ("Traceback (most recent call last)" in out
                                  or self.returncode not in (0, 2))
        refuse = self.case.expect == "refuse"
        silent = refuse and self.returncode == 0
        left = not hang and self.returncode != 0 and bool(self.changed)
        wrong = not refuse and self.returncode == 2
        lower = out.lower()
        named = all(name.lower() in lower for name in self.case.required_names())
        fixed = any(word in lower for word in FIX_WORDS)
        unclear = (refuse and self.returncode == 2 and not traceback
                   and not (named and fixed))
        checked = self.problem is None
        if refuse:
            clean = (self.returncode == 2 and not traceback and not left and named and fixed
                     and checked)
        else:
            clean = self.returncode == 0 and not traceback and checked
        return {"clean": clean, "traceback": traceback, "hang": hang, "silent accept": silent,
                "left files": left, "wrong refusal": wrong, "unclear": unclear,
                "check failed": not checked}

    def verdict(self) -> str:
        cols = self.columns
        bad = [name for name in COLUMNS[2:] if cols[name]]
        return "clean" if cols["clean"] else ", ".join(bad) or "not clean"


def names_for(file: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """What a refusal must name: the file and `names`, or only `names` when they are
    command-line options (an option's error is about the option, not the file)."""
    if any(name.startswith("--") for name in names):
        return tuple(names)
    return (file, *names)


def _write(path: Path, content: Content, fx: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if callable(content):
        content(path, fx)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and directory under `root`: relative path -> (size, mtime_ns)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            try:
                stat = path.lstat()
            except OSError:
                continue
            size = 0 if path.is_dir() else stat.st_size
            mtime = 0 if path.is_dir() else stat.st_mtime_ns
            found[str(path.relative_to(root))] = (size, mtime)
    return found


def run_case(case: Case, surface: str, work: Path, fx: Path) -> Outcome:
    """Run `case` in a fresh `work/<surface>/<id>` directory; its outcome."""
    case_dir = work / surface / case.id
    if case_dir.exists():
        _make_writable(case_dir)
        shutil.rmtree(case_dir)
    case_dir.mkdir(parents=True)
    for name, content in case.files.items():
        _write(case_dir / name, content, fx)
    if case.setup is not None:
        case.setup(case_dir, fx)
    before = snapshot(case_dir)
    args = [arg.replace("{fx}", str(fx)) for arg in case.command]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "COLUMNS": "100",
           **case.env}
    start = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", *args], cwd=case_dir, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        raw, _ = process.communicate(timeout=case.timeout)
        returncode = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raw, _ = process.communicate()
        returncode = None
    seconds = time.monotonic() - start
    output = raw.decode("utf-8", "replace")
    after = snapshot(case_dir)
    changed = sorted(name for name in set(before) | set(after)
                     if before.get(name) != after.get(name))
    outcome = Outcome(case, surface, returncode, output, seconds, changed)
    if case.check is not None and (returncode == 0 or case.expect == "refuse"):
        outcome.problem = case.check(case_dir, output)
    _make_writable(case_dir)
    return outcome


def _make_writable(root: Path) -> None:
    for dirpath, _, _ in os.walk(root):
        try:
            os.chmod(dirpath, 0o755)
        except OSError:
            pass
