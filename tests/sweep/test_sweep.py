# moved from tests/test_sweep.py
"""flyenv sweep: spec parsing, bootstrap CIs, and real Ray runs with resume and retries."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from flyenv.sweep import SweepSpecError, bootstrap_ci, load_sweep_spec, parse_sweep_spec, run_sweep

ray = pytest.importorskip("ray")
TESTS = Path(__file__).parents[1]


def _spec(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "sweep.toml"
    p.write_text(textwrap.dedent(body))
    return p


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray for the module (starting one costs seconds on 2 cores)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=10**8)
    yield
    ray.shutdown()


def test_bootstrap_ci_known_answers():
    mean, lo, hi = bootstrap_ci([1.0, 1.0, 1.0])
    assert (mean, lo, hi) == (1.0, 1.0, 1.0)
    assert bootstrap_ci([2.5]) == (2.5, 2.5, 2.5)
    assert all(np.isnan(v) for v in bootstrap_ci([np.nan]))
    x = np.random.default_rng(0).normal(10.0, 2.0, size=400)
    mean, lo, hi = bootstrap_ci(x)
    se = x.std(ddof=1) / np.sqrt(x.size)
    assert lo < mean < hi
    assert abs((hi - lo) - 2 * 1.96 * se) < 0.15 * (2 * 1.96 * se)  # normal-theory width
    assert bootstrap_ci([0.0, 1.0, np.nan])[0] == 0.5  # NaN seeds are left out


def test_spec_rows_grid_and_errors(tmp_path):
    spec = load_sweep_spec(
        _spec(
            tmp_path,
            """
            [sweep]
            name = "s"
            cell = "sweep_cells:noisy_mean"
            seeds = {start = 10, count = 3}
            metrics = ["score"]
            [sweep.base]
            mu = 0.0
            env = {time_limit_s = 3.0, n = 1}
            [[sweep.configs]]
            name = "a"
            [[sweep.configs]]
            name = "b"
            mu = 2.0
            env = {n = 2}
            [sweep.grid]
            "env.time_limit_s" = [3.0, 5.0]
            """,
        )
    )
    assert spec.seeds == [10, 11, 12]
    rows = dict(spec.rows())
    assert list(rows) == [
        "a/env.time_limit_s=3.0",
        "a/env.time_limit_s=5.0",
        "b/env.time_limit_s=3.0",
        "b/env.time_limit_s=5.0",
    ]
    assert rows["b/env.time_limit_s=5.0"]["env"] == {"time_limit_s": 5.0, "n": 2}  # deep merge
    assert rows["a/env.time_limit_s=3.0"]["mu"] == 0.0
    assert len(spec.cells()) == 12
    bad = {
        "no [sweep] table": {},
        "unknown [sweep] key": {
            "sweep": {"name": "s", "cell": "m:f", "seeds": [1], "metrics": ["x"], "sedes": 1}
        },
        "needs 'metrics'": {"sweep": {"name": "s", "cell": "m:f", "seeds": [1]}},
        "must be 'package.module:function'": {
            "sweep": {"name": "s", "cell": "m.f", "seeds": [1], "metrics": ["x"]}
        },
        "duplicates": {"sweep": {"name": "s", "cell": "m:f", "seeds": [1, 1], "metrics": ["x"]}},
        "used twice": {
            "sweep": {
                "name": "s",
                "cell": "m:f",
                "seeds": [1],
                "metrics": ["x"],
                "configs": [{"name": "a"}, {"name": "a"}],
            }
        },
    }
    for message, data in bad.items():
        with pytest.raises(SweepSpecError, match=re.escape(message)):
            parse_sweep_spec(data)
    with pytest.raises(SweepSpecError, match="does not exist"):
        load_sweep_spec(tmp_path / "missing.toml")


def test_sweep_runs_on_ray_writes_tables_and_resumes(tmp_path, ray_local):
    path = _spec(
        tmp_path,
        """
        [sweep]
        name = "known"
        cell = "sweep_cells:noisy_mean"
        seeds = [0, 1, 2, 3, 4]
        metrics = ["score", "info.seed"]
        curves = ["curve", "rows:timesteps:success_rate"]
        [sweep.base]
        mu = 0.0
        sigma = 0.1
        [[sweep.configs]]
        name = "low"
        [[sweep.configs]]
        name = "high"
        mu = 5.0
        """,
    )
    out = tmp_path / "out"
    summary = run_sweep(path, out=out, progress=False)
    by_row = {e["row"]: e for e in summary}
    assert by_row["low"]["n_ok"] == by_row["high"]["n_ok"] == 5
    hi = by_row["high"]["metrics"]["score"]
    lo = by_row["low"]["metrics"]["score"]
    expected = [5.0 + 0.1 * np.random.default_rng(s).normal() for s in range(5)]
    assert hi["mean"] == pytest.approx(np.mean(expected))
    assert hi["ci_low"] <= hi["mean"] <= hi["ci_high"] and hi["ci_high"] < 5.5
    assert lo["ci_high"] < hi["ci_low"]  # the two rows are separated
    assert by_row["low"]["metrics"]["info.seed"]["mean"] == 2.0
    for f in (
        "summary.md",
        "summary.csv",
        "summary.json",
        "summary.png",
        "cells.csv",
        "curves_curve.png",
    ):
        assert (out / f).stat().st_size > 0, f
    md = (out / "summary.md").read_text()
    assert "| high | 5/5 | 0 |" in md and "bootstrap" in md
    assert (out / "cells" / "high" / "seed_3" / "artifact.txt").read_text() == "high 3\n"

    # resume: every cell is finished, so nothing runs again
    run_sweep(path, out=out, progress=False)
    assert (out / "cells" / "high" / "seed_3" / "calls").read_text() == "1"
    # a lost cell (its result deleted, as after a kill) runs again; the others do not
    (out / "cells" / "low" / "seed_2" / "cell.json").unlink()
    run_sweep(path, out=out, progress=False)
    assert (out / "cells" / "low" / "seed_2" / "calls").read_text() == "2"
    assert (out / "cells" / "low" / "seed_1" / "calls").read_text() == "1"
    # a run of one row (--configs) reruns nothing else and keeps the other row's
    # finished cells in the tables
    (out / "cells" / "high" / "seed_0" / "cell.json").unlink()
    summary = run_sweep(path, out=out, progress=False, configs=["high"])
    assert {e["row"] for e in summary} == {"low", "high"}
    assert (out / "cells" / "high" / "seed_0" / "calls").read_text() == "2"
    assert (out / "cells" / "low" / "seed_0" / "calls").read_text() == "1"
    assert "| low | 5/5 | 0 |" in (out / "summary.md").read_text()


def test_killed_cell_is_retried_once_and_failures_stay_in_the_table(tmp_path, ray_local):
    path = _spec(
        tmp_path,
        """
        [sweep]
        name = "crash"
        cell = "sweep_cells:killed_once"
        seeds = [0, 1]
        metrics = ["score"]
        """,
    )
    summary = run_sweep(path, out=tmp_path / "a", progress=False)
    assert summary[0]["n_ok"] == 2
    rec = json.loads((tmp_path / "a" / "cells" / "default" / "seed_1" / "cell.json").read_text())
    assert rec["status"] == "ok" and rec["attempts"] == 2

    # a cell that dies on every attempt is reported failed after one retry, not dropped
    path2 = _spec(
        tmp_path,
        """
        [sweep]
        name = "dies"
        cell = "sweep_cells:killed_always"
        seeds = [7]
        metrics = ["score"]
        """,
    )
    summary = run_sweep(path2, out=tmp_path / "b", progress=False)
    assert summary[0]["n_failed"] == 1 and summary[0]["n_ok"] == 0
    rec = json.loads((tmp_path / "b" / "cells" / "default" / "seed_7" / "cell.json").read_text())
    assert rec["status"] == "failed" and rec["attempts"] == 2
    assert "| default | 0/1 | 1 |" in (tmp_path / "b" / "summary.md").read_text()

    # an exception: retried once, then failed; the other seeds' numbers are kept
    path3 = _spec(
        tmp_path,
        """
        [sweep]
        name = "raises"
        cell = "sweep_cells:always_raises"
        seeds = [0, 1, 2]
        metrics = ["score"]
        [sweep.base]
        bad_seed = 1
        """,
    )
    summary = run_sweep(path3, out=tmp_path / "c", progress=False)
    assert summary[0]["n_ok"] == 2 and summary[0]["n_failed"] == 1
    assert summary[0]["metrics"]["score"]["mean"] == 1.0
    rec = json.loads((tmp_path / "c" / "cells" / "default" / "seed_1" / "cell.json").read_text())
    assert rec["attempts"] == 2 and "diverged" in rec["error"]


def test_agent_script_cell(tmp_path, ray_local):
    script = tmp_path / "agent.py"
    script.write_text(
        textwrap.dedent(
            """
            import argparse, json, pathlib
            p = argparse.ArgumentParser()
            p.add_argument("--learning-rate", type=float, required=True)
            p.add_argument("--use-bias", action="store_true")
            p.add_argument("--seed", type=int)
            p.add_argument("--run-dir")
            a = p.parse_args()
            out = {"final": {"loss": a.learning_rate * 10 + a.seed, "bias": a.use_bias}}
            pathlib.Path(a.run_dir, "results.json").write_text(json.dumps(out))
            """
        )
    )
    path = _spec(
        tmp_path,
        f"""
        [sweep]
        name = "agent"
        cell = "{script}"
        seeds = [0, 2]
        metrics = ["final.loss", "final.bias"]
        [[sweep.configs]]
        name = "lr1"
        learning_rate = 0.1
        use_bias = true
        [[sweep.configs]]
        name = "bad"
        learning_rate = "not-a-number"
        """,
    )
    summary = {e["row"]: e for e in run_sweep(path, out=tmp_path / "o", progress=False)}
    assert summary["lr1"]["metrics"]["final.loss"]["mean"] == pytest.approx(2.0)
    assert summary["lr1"]["metrics"]["final.bias"]["mean"] == 1.0
    assert summary["bad"]["n_failed"] == 2
    rec = json.loads((tmp_path / "o" / "cells" / "bad" / "seed_0" / "cell.json").read_text())
    assert "invalid float value" in rec["error"]


def test_cli_serial_and_report_only(tmp_path, monkeypatch, capsys):
    from flyenv.cli import main

    monkeypatch.syspath_prepend(str(TESTS))
    path = _spec(
        tmp_path,
        """
        [sweep]
        name = "cli"
        cell = "sweep_cells:noisy_mean"
        seeds = [0, 1, 2]
        metrics = ["score"]
        [sweep.base]
        mu = 1.0
        """,
    )
    out = tmp_path / "o"
    assert main(["sweep", str(path), "--out", str(out), "--serial", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "| default | 3/3 | 0 |" in text
    assert main(["sweep", str(path), "--out", str(out), "--report-only", "--seeds", "0", "9"]) == 0
    text = capsys.readouterr().out
    assert "| default | 1/2 | 0 (+1 not run) |" in text
    with pytest.raises(SystemExit, match="not in the sweep"):
        main(["sweep", str(path), "--out", str(out), "--configs", "nope", "--serial"])
    assert sys.modules.get("sweep_cells") is not None
