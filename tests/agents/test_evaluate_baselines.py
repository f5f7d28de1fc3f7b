# moved from tests/test_evaluate_baselines.py
"""agents/evaluate_baselines.py: the untrained-brain row, with brain overrides."""

from __future__ import annotations

import json

from agent_scripts import load_agent


def _agent():
    return load_agent("evaluate_baselines")


def test_untrained_row_takes_brain_config_overrides(tmp_path):
    agent = _agent()
    out = tmp_path / "table.json"
    rows = agent.main(
        ["--skip", "braitenberg", "bptt", "--twin-starts", "3", "--mujoco-starts", "0",
         "--untrained-brain-config", json.dumps({"bilateral_contrast": 0.8}),
         "--out", str(out)]
    )  # fmt: skip
    assert len(rows) == 1
    row = rows[0]
    assert '"bilateral_contrast": 0.8' in row["name"]
    assert 0.0 <= row["twin"]["success_rate"] <= 1.0 and row["twin"]["starts"] == 3
    saved = json.loads(out.read_text())
    assert saved["rows"][0]["name"] == row["name"]
    assert out.with_suffix(".md").read_text().count("|") > 8
