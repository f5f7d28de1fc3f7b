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


def test_a_recurrent_run_is_evaluated_with_its_state_carried(tmp_path):
    from sb3_contrib import RecurrentPPO

    from flyenv.policies import sb3_recurrent
    from flyenv.rl import evaluation as ev
    from flyenv.rl.sb3_training import make_vec_env

    agent = _agent()
    env_id = "flyenv/OdorTaxis-kinematic-v0"
    env_kwargs = {"time_limit_s": 0.5}
    venv = make_vec_env(env_id, 2, 0, env_kwargs)
    model = RecurrentPPO("MlpLstmPolicy", venv, n_steps=8, batch_size=16, seed=0, device="cpu")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    model.save(run_dir / "best_model.zip")
    results = {
        "algo": "RecurrentPPO", "policy": "mlp_lstm", "env": env_id, "total_timesteps": 0,
        "train_wall_s": 0.0, "env_kwargs": env_kwargs,
    }  # fmt: skip
    (run_dir / "results.json").write_text(json.dumps(results))
    args = agent.parse_args(["--twin-starts", "3", "--mujoco-starts", "0"])
    row = agent.run_row(run_dir, args)
    expected = ev.evaluate_twin(
        sb3_recurrent.recurrent_batch_policy(model), env_id, {}, 3, agent.TWIN_SEED
    )
    assert row["twin"]["successes"] == expected.successes
    assert row["twin"]["mean_final_distance_mm"] == expected.mean_final_distance_mm
