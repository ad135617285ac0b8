"""`python -m e2e.conformance run --mode kubeproxy|nodeport [--quick] | render` (root: the real-node lab).

`run` builds e2e.test (cached), brings a fresh conformance lab up for the mode, runs the specs, writes JUnit and
the run's record to .lab/conformance/, and takes the lab down (IRONLB_KEEP_LAB=1 keeps it). `render` writes the
table of docs/conformance.md from the JUnit files there; its last line is the summary as JSON."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from e2e.conformance import build, render, run
from e2e.conformance.specs import QUICK, SPECS, Mode
from e2e.lab import lab
from e2e.lab.config import REPO

DOC = REPO / "docs" / "conformance.md"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m e2e.conformance", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the specs in one forwarding mode on a fresh real-node lab")
    r.add_argument("--mode", type=Mode, choices=list(Mode), required=True)
    r.add_argument("--quick", action="store_true", help="leave out the two rolling-update specs")
    r.add_argument("--results", type=Path, default=run.RESULTS_DIR)
    r.add_argument("--timeout", type=int, default=3 * 3600,
                   help="seconds the specs may take (ginkgo's suite timeout: the report is written at it)")
    g = sub.add_parser("render", help="write docs/conformance.md's table from the JUnit files; print the summary")
    g.add_argument("--results", type=Path, default=run.RESULTS_DIR)
    g.add_argument("--doc", type=Path, default=DOC)
    return p


def _commit() -> str:
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def run_mode(mode: Mode, quick: bool, results: Path, timeout_s: int) -> run.Run:
    """One mode's run, its record written beside its JUnit; the lab taken down after unless IRONLB_KEEP_LAB=1."""
    binary, build_seconds = build.e2e_test_binary()
    try:
        done = run.run_specs(mode, binary, QUICK if quick else SPECS, results, timeout_s)
    finally:
        if os.environ.get("IRONLB_KEEP_LAB") != "1":
            lab.down()
    record = {"mode": mode.value, "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
              "commit": _commit(), "quick": quick, "build_seconds": build_seconds, "lab_seconds": done.lab_seconds,
              "specs_seconds": done.specs_seconds, "exit_code": done.exit_code}
    (results / f"run-{mode.value}.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record))
    return done


def render_doc(results: Path, doc: Path) -> dict[str, object]:
    """Render DOC's table from RESULTS; return the summary."""
    files = {m: run.junit_path(m, results) for m in Mode}
    runs = {m: json.loads(p.read_text()) for m in Mode if (p := results / f"run-{m.value}.json").exists()}
    table = render.load(files)
    render.write(doc, table, runs)
    return render.summary(table)


def main(argv: list[str] | None = None) -> int:
    """Run one command."""
    args = _parser().parse_args(argv)
    if args.cmd == "run":
        if os.geteuid() != 0:
            print("the real-node lab needs root", file=sys.stderr)
            return 2
        done = run_mode(args.mode, args.quick, args.results, args.timeout)
        return 0 if done.junit.exists() else 1
    print(json.dumps(render_doc(args.results, args.doc)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
