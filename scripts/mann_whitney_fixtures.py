#!/usr/bin/env python3
"""Writes tests/fixtures/mann_whitney.json: Mann-Whitney U statistics and two-sided p-values
computed by the reference implementation, scipy.stats.mannwhitneyu, for credpool's own test to
check src/analysis/stats/mann_whitney.rs against.

Run once (`pip install scipy`, then `python3 scripts/mann_whitney_fixtures.py`); the JSON is
committed, scipy is not a dependency. The samples are drawn with a fixed seed, so rerunning it
gives the same file (for a given scipy).
"""
import json
import pathlib

import numpy as np
import scipy
from scipy.stats import mannwhitneyu

rng = np.random.default_rng(20261202)
cases = []


def add(name, x, y):
    x = [float(v) for v in x]
    y = [float(v) for v in y]
    ties = len(set(x + y)) < len(x) + len(y)
    case = {"name": name, "x": x, "y": y}
    a = mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
    case["u"] = float(a.statistic)
    case["p_asymptotic"] = float(a.pvalue)
    if not ties:
        e = mannwhitneyu(x, y, alternative="two-sided", method="exact")
        case["p_exact"] = float(e.pvalue)
    cases.append(case)


# Small samples without ties (exact and asymptotic), like repetitions of virtual runs.
for n1, n2 in [(3, 3), (4, 5), (5, 5), (6, 9), (8, 8), (10, 10), (12, 7), (20, 20), (30, 25)]:
    for shift in [0.0, 0.3, 1.0]:
        x = rng.lognormal(0.0, 0.5, n1)
        y = rng.lognormal(shift, 0.5, n2)
        add(f"lognormal n={n1},{n2} shift={shift}", np.round(x, 9), np.round(y, 9))
# Ties (values on a coarse grid, as HdrHistogram buckets make them): asymptotic only.
for n1, n2 in [(5, 5), (10, 10), (15, 12), (40, 40)]:
    x = rng.integers(0, 6, n1)
    y = rng.integers(1, 7, n2)
    add(f"ties n={n1},{n2}", x, y)
# Large samples (asymptotic).
for n1, n2 in [(60, 70), (200, 150)]:
    add(f"normal n={n1},{n2}", np.round(rng.normal(0, 1, n1), 9), np.round(rng.normal(0.2, 1, n2), 9))
# Edge cases: complete separation, identical samples.
add("separated 5,5", [1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
add("interleaved 4,4", [1, 3, 5, 7], [2, 4, 6, 8])

out = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "mann_whitney.json"
out.write_text(json.dumps({"generator": "scripts/mann_whitney_fixtures.py", "scipy": scipy.__version__, "cases": cases}, indent=1) + "\n")
print(f"{out}: {len(cases)} cases")
