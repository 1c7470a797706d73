"""`python -m audit`: run every case of every surface, print and save the audit table.

    python -m audit                          # all surfaces, 2 cases at a time
    python -m audit --surface items-csv      # one surface
    python -m audit --case items-csv/nul-in-text --keep   # one case, keep its directory

Writes OUT (default runs/audit): `table.md` (the table, then every case that was not clean
with its output's last lines), `cases.jsonl` (one line per case) and `logs/SURFACE/ID.txt`
(each case's full output). Exit status 1 when any case is not clean.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from audit.cases import SURFACES
from audit.fixtures import Fixtures
from audit.harness import COLUMNS, Outcome, run_case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit", description=__doc__.split("\n")[0])
    parser.add_argument("--surface", action="append", choices=[s.name for s in SURFACES],
                        help="only this surface (repeatable)")
    parser.add_argument("--case", action="append", default=[], help="only SURFACE/ID")
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    parser.add_argument("--out", type=Path, default=Path("runs/audit"))
    parser.add_argument("--keep", action="store_true", help="keep the case directories")
    args = parser.parse_args(argv)

    chosen = [s for s in SURFACES if not args.surface or s.name in args.surface]
    work = Path(tempfile.mkdtemp(prefix="deepalign-audit-"))
    fixtures = Fixtures(work / "fixtures")
    jobs = []
    for surface in chosen:
        for case in surface.cases:
            if args.case and f"{surface.name}/{case.id}" not in args.case:
                continue
            jobs.append((surface, case))
    for surface in {s.name: s for s, _ in jobs}.values():
        for need in surface.needs:
            fixtures.build(need)

    def one(job):
        surface, case = job
        outcome = run_case(case, surface.name, work / "cases", fixtures.root)
        print(f"{outcome.verdict():<14} {surface.name}/{case.id} ({outcome.seconds:.1f} s)",
              flush=True)
        return outcome

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = list(pool.map(one, jobs))
    _save(outcomes, [s for s in chosen if any(j[0] is s for j in jobs)], args.out)
    print((args.out / "table.md").read_text().split("\n\n## ")[0])
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"case directories kept in {work}")
    return 0 if all(o.columns["clean"] for o in outcomes) else 1


def table(outcomes: list[Outcome], surfaces) -> str:
    lines = ["| surface | " + " | ".join(COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 1) + "|"]
    for surface in surfaces:
        mine = [o for o in outcomes if o.surface == surface.name]
        counts = [len(mine)] + [sum(o.columns[c] for o in mine) for c in COLUMNS[1:]]
        lines.append(f"| {surface.label} | " + " | ".join(map(str, counts)) + " |")
    counts = [len(outcomes)] + [sum(o.columns[c] for o in outcomes) for c in COLUMNS[1:]]
    lines.append("| **all** | " + " | ".join(map(str, counts)) + " |")
    return "\n".join(lines)


def _save(outcomes: list[Outcome], surfaces, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    parts = ["# Bad-input audit\n", table(outcomes, surfaces)]
    failing = [o for o in outcomes if not o.columns["clean"]]
    if failing:
        parts.append("\n## Cases that were not clean\n")
        for o in failing:
            tail = "\n".join(o.output.strip().splitlines()[-6:])
            parts.append(f"### {o.surface}/{o.case.id}: {o.verdict()}\n\nexit {o.returncode}"
                         + (f"; check: {o.problem}" if o.problem else "")
                         + (f"; changed: {', '.join(o.changed[:8])}" if o.changed else "")
                         + f"\n\n```\n{tail}\n```\n")
    (out / "table.md").write_text("\n".join(parts) + "\n", encoding="utf-8")
    with open(out / "cases.jsonl", "w", encoding="utf-8") as handle:
        for o in outcomes:
            handle.write(json.dumps({
                "surface": o.surface, "id": o.case.id, "expect": o.case.expect,
                "command": list(o.case.command), "returncode": o.returncode,
                "seconds": round(o.seconds, 2), "verdict": o.verdict(), "changed": o.changed,
                "problem": o.problem, "note": o.case.note}) + "\n")
            log = logs / o.surface / f"{o.case.id}.txt"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(o.output, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
