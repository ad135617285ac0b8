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

from e2e.conformance import build, junit, render, run
from e2e.conformance.specs import QUICK, SPECS, Mode, Spec, spec_named
from e2e.lab import lab
from e2e.lab.config import REPO

DOC = REPO / "docs" / "conformance.md"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m e2e.conformance", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the specs in one forwarding mode on a fresh real-node lab")
    r.add_argument("--mode", type=Mode, choices=list(Mode), required=True)
    r.add_argument("--quick", action="store_true", help="leave out the two rolling-update specs")
    r.add_argument("--resume", action="store_true",
                   help="run only the specs the mode's earlier reports here lack or had interrupted, into a report "
                        "of its own beside them")
    r.add_argument("--only", action="append", default=[], metavar="SPEC",
                   help="run only this spec (its It text; repeatable), into a report of its own beside the mode's "
                        "earlier ones, whose verdict it replaces")
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


def to_run(mode: Mode, quick: bool, resume: bool, results: Path, only: tuple[str, ...] = ()
           ) -> tuple[tuple[Spec, ...], int]:
    """The specs a run runs and its report's part number: all of them (or the quick ones) into a fresh first
    report, on RESUME those without a verdict in the earlier reports, or ONLY those named, into the next part."""
    specs = QUICK if quick else SPECS
    if only:
        return tuple(spec_named(text) for text in only), len(run.reports(mode, results))
    if not resume:
        for old in run.reports(mode, results):
            old.unlink()
            run.record_path(old).unlink(missing_ok=True)
        return specs, 0
    earlier = run.reports(mode, results)
    done = junit.read_all(earlier)
    left = tuple(s for s in specs if s.text not in done
                 or done[s.text].outcome in (junit.Outcome.NOT_RUN, junit.Outcome.INTERRUPTED))
    return left, len(earlier)


def run_mode(mode: Mode, quick: bool, resume: bool, results: Path, timeout_s: int,
             only: tuple[str, ...] = ()) -> run.Run | None:
    """One mode's run, its record written beside its JUnit; the lab taken down after unless IRONLB_KEEP_LAB=1."""
    specs, part = to_run(mode, quick, resume, results, only)
    commit, date = _commit(), dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if not specs:
        print(f"{mode.value}: every spec has a verdict already", file=sys.stderr)
        return None
    binary, build_seconds = build.e2e_test_binary()
    try:
        done = run.run_specs(mode, binary, specs, results, timeout_s, part)
    finally:
        if os.environ.get("IRONLB_KEEP_LAB") != "1":
            lab.down()
    record = {"mode": mode.value, "date": date, "commit": commit, "quick": quick, "build_seconds": build_seconds,
              "lab_seconds": done.lab_seconds, "specs_seconds": done.specs_seconds, "specs_run": len(specs),
              "exit_code": done.exit_code}
    run.record_path(done.junit).write_text(json.dumps(record, indent=2))
    print(json.dumps(record))
    return done


def render_doc(results: Path, doc: Path) -> dict[str, object]:
    """Render DOC's table from RESULTS; return the summary."""
    files = {m: run.reports(m, results) for m in Mode}
    runs = {m: [json.loads(r.read_text()) for p in files[m] if (r := run.record_path(p)).exists()] for m in Mode}
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
        done = run_mode(args.mode, args.quick, args.resume, args.results, args.timeout, tuple(args.only))
        return 0 if done is None or done.junit.exists() else 1
    print(json.dumps(render_doc(args.results, args.doc)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
