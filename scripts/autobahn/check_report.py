#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Check an Autobahn|Testsuite fuzzingclient report (index.json) for one agent.

A case passes only when both its `behavior` and its `behaviorClose` are OK,
NON-STRICT or INFORMATIONAL; anything else (FAILED, WRONG CODE, UNCLEAN,
UNIMPLEMENTED, ...) is a failure. A case that the spec asked for but that is
missing from the report is a failure too: wstest stops early and still writes
a (partial) report, exiting 0, when it cannot connect to the server, so the
report alone would otherwise look fine.

Runs under Python 2.7 (the autobahntestsuite virtualenv, which lets it resolve
the spec's case patterns with the suite's own case list) and under Python 3
(then the missing-case check only works with --expect-count).

Usage:
  check_report.py [--agent NAME] [--spec SPEC.json] [--expect-count N] INDEX.json

Exit status: 0 all cases pass, 1 some case failed or is missing, 2 bad input.
"""

from __future__ import print_function

import argparse
import json
import os
import re
import sys
import warnings

PASSING = ("OK", "NON-STRICT", "INFORMATIONAL")
# How much of a failing case's own `result` text to show on its line.
RESULT_CHARS = 160
# How many missing case ids to list by name.
MISSING_SHOWN = 20


def case_key(case_id):
    """'6.4.10' -> (6, 4, 10), so that 6.4.10 sorts after 6.4.9."""
    try:
        return tuple(int(x) for x in case_id.split("."))
    except ValueError:
        return (sys.maxsize, case_id)


def resolve_expected(spec):
    """Return the sorted case ids the spec selects, using the installed
    autobahntestsuite (exactly what wstest runs), or None if it isn't importable."""
    # cryptography 3.3 (pulled in by the suite) warns about Python 2 on import.
    warnings.filterwarnings("ignore", message="Python 2 is no longer supported")
    try:
        from autobahntestsuite.case import (Cases, CaseCategories, CaseSubCategories,
                                            CaseBasename, CaseSetname)
        from autobahntestsuite.caseset import CaseSet
    except Exception:  # not under the suite's Python 2.7: no authoritative list
        return None
    case_set = CaseSet(CaseSetname, CaseBasename, Cases, CaseCategories, CaseSubCategories)
    return case_set.parseSpecCases(spec)


def matches_spec(case_id, spec):
    """Same pattern semantics as autobahntestsuite's CaseSet.resolveCasePatternList."""
    def hit(patterns):
        for pat in patterns:
            if "*" in pat:
                if re.match(pat.replace(".", r"\.").replace("*", ".*"), case_id):
                    return True
            elif pat == case_id:
                return True
        return False
    return hit(spec.get("cases", [])) and not hit(spec.get("exclude-cases", []))


def bad_input(msg):
    print("autobahn: ERROR: " + msg, file=sys.stderr)
    sys.exit(2)


def load_json(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except (IOError, OSError) as e:
        bad_input("cannot read %s %s: %s" % (what, path, e))
    except ValueError as e:
        bad_input("%s %s is not valid JSON: %s" % (what, path, e))


def result_text(report_dir, entry):
    """The per-case report's human-readable `result`, if it can be read."""
    name = entry.get("reportfile")
    if not name:
        return ""
    try:
        with open(os.path.join(report_dir, name)) as f:
            text = json.load(f).get("result") or ""
    except Exception:
        return ""
    text = " ".join(text.split())
    if len(text) > RESULT_CHARS:
        text = text[:RESULT_CHARS - 3] + "..."
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("index", help="path to the report's index.json")
    ap.add_argument("--agent", default="ringcast", help="agent name in the report (default: ringcast)")
    ap.add_argument("--spec", help="the fuzzingclient spec the report was made with; "
                                   "only the cases it selects are judged, and missing ones fail")
    ap.add_argument("--expect-count", type=int,
                    help="fail unless the report has exactly this many (selected) cases")
    args = ap.parse_args()

    index = load_json(args.index, "report")
    if args.agent not in index:
        # Still go on: with --spec every expected case is then reported missing.
        print("autobahn: report %s has no results for agent %r (agents in it: %s)"
              % (args.index, args.agent, ", ".join(sorted(index)) or "none"))
    results = index.get(args.agent, {})

    spec = load_json(args.spec, "spec") if args.spec else None
    if spec is not None:
        # Ignore anything the spec didn't ask for (e.g. a hand-run 9.* case).
        results = dict((c, r) for c, r in results.items() if matches_spec(c, spec))
    expected = resolve_expected(spec) if spec is not None else None
    missing = sorted(set(expected) - set(results), key=case_key) if expected is not None else []

    counts = dict((b, 0) for b in PASSING)
    failures = []  # (case id, message)
    for case_id in sorted(results, key=case_key):
        entry = results[case_id]
        behavior = entry.get("behavior")
        behavior_close = entry.get("behaviorClose")
        if behavior in PASSING and behavior_close in PASSING:
            # Count the case under the less-good of its two verdicts, so that an
            # OK case whose close was only NON-STRICT shows up as NON-STRICT.
            counts[max(behavior, behavior_close, key=PASSING.index)] += 1
        else:
            msg = "behavior=%s behaviorClose=%s remoteCloseCode=%s" % (
                behavior, behavior_close, entry.get("remoteCloseCode"))
            text = result_text(os.path.dirname(os.path.abspath(args.index)), entry)
            if text:
                msg += " -- " + text
            failures.append((case_id, msg))
    failures.sort(key=lambda f: case_key(f[0]))

    total = len(results) + len(missing)
    print("autobahn: %d cases: %d OK, %d NON-STRICT, %d INFORMATIONAL, %d failed"
          % (total, counts["OK"], counts["NON-STRICT"], counts["INFORMATIONAL"],
             len(failures) + len(missing)))
    for case_id, msg in failures:
        print("autobahn:   FAILED %s: %s" % (case_id, msg))
    if missing:
        # Usually a run that stopped early, so one line rather than hundreds.
        shown = missing[:MISSING_SHOWN]
        more = " and %d more" % (len(missing) - len(shown)) if len(missing) > len(shown) else ""
        print("autobahn:   MISSING %d case(s), not in the report (server unreachable or wstest "
              "stopped early?): %s%s" % (len(missing), " ".join(shown), more))

    ok = not failures and not missing
    if total == 0:
        print("autobahn: the report has no cases at all")
        ok = False
    if args.expect_count is not None and total != args.expect_count:
        print("autobahn: expected %d cases, the report has %d" % (args.expect_count, total))
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
