"""The BPTT conditioning agent end to end on a tiny configuration: it trains only the
configured tensors, writes its outputs atomically, resumes, and reports the PI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from agent_scripts import load_agent

agent = load_agent("bptt_odor_conditioning")
TINY = [
    "--num-episodes", "2", "--batch-size", "3", "--eval-starts", "4", "--eval-every", "1",
    "--report-starts", "6", "--cs-duration-s", "0.1", "--gap-s", "0.05", "--test-s", "0.3",
    "--no-progress",
]  # fmt: skip


def test_trains_the_plastic_side_only_and_resumes(tmp_path):
    run = tmp_path / "run"
    args = agent.parse_args(TINY)
    before = {n: p.detach().clone() for n, p in agent.build(args)[0].named_parameters()}
    out = agent.main([*TINY, "--run-dir", str(run)])
    assert {"heldout", "heldout_at_start", "validation"} <= set(out)
    h = out["heldout"]
    assert h["correct"] + h["wrong"] + h["no_choice"] == 1.0
    assert h["performance_index"] == h["correct"] - h["wrong"]
    ck = torch.load(run / "checkpoint_latest.pt", weights_only=False)
    assert ck["episode"] == 2
    changed = {
        n for n, v in ck["policy_state"].items() if n in before and not torch.equal(v, before[n])
    }
    assert changed and all(n.startswith(agent.TRAINABLE["plastic"]) for n in changed), changed
    assert any(n.startswith("brain.plasticity.") for n in changed)
    assert json.loads((run / "evaluation.json").read_text())["best_episode"] in (1, 2)
    again = agent.main([*TINY, "--run-dir", str(run)])  # resumes: nothing left to train
    assert torch.load(run / "checkpoint_latest.pt", weights_only=False)["episode"] == 2
    assert again["best_episode"] == out["best_episode"]
    # "before training" is the untrained brain on a resume too, not the resumed weights
    assert again["heldout_at_start"] == out["heldout_at_start"]
    assert (
        out["heldout"]["mean_final_distance_to_goal_mm"]
        != (out["heldout_at_start"]["mean_final_distance_to_goal_mm"])
    )


SHORTTRACE_SCENARIO = str(
    Path(__file__).resolve().parents[2] / "scenarios" / "bptt_odor_conditioning_short_trace.toml"
)
TINY_3S = [
    "--scenario", SHORTTRACE_SCENARIO,  # the reported design and its 3 s protocol
    "--num-episodes", "2", "--batch-size", "3", "--eval-starts", "4", "--eval-every", "1",
    "--report-starts", "6", "--no-progress",
]  # fmt: skip


def test_a_tiny_trained_brain_chooses_above_its_plasticity_off_controls(tmp_path):
    """Train the short-trace plastic brain for two tiny batches, and the same brain with
    its plasticity off; score both checkpoints, and the trained one with its
    within-episode plasticity ablated, on the same 64 held-out-pair episodes (3 s to
    choose). Only the brain that learns within the episode knows which odor was paired
    with sugar: measured PI CS+ +0.69 against 0.00 (trained without plasticity) and
    -0.03 (plasticity ablated); the 95 % binomial half-width at n = 64 is about 0.12."""
    from flyenv.evaluation.conditioning_cell import conditioning_cell

    on = agent.main([*TINY_3S, "--run-dir", str(tmp_path / "on")])
    off = agent.main([*TINY_3S, "--plasticity", "off", "--run-dir", str(tmp_path / "off")])
    assert on["plasticity"] != "off" and off["plasticity"] == "off"
    cell = {"pair_set": "heldout", "n_episodes": 64, "test_s": 3.0}
    scores = {
        name: conditioning_cell(
            {**cell, "agent": str(tmp_path / run / "checkpoint_best.pt"), "ablation": ablation},
            1000,
            tmp_path / f"cell_{name}",
        )["performance_index_cs_plus"]
        for name, run, ablation in (
            ("trained", "on", []),
            ("trained_without_plasticity", "off", []),
            ("plasticity_ablated", "on", ["no_plasticity"]),
        )
    }
    assert scores["trained"] > 0.35, scores
    assert abs(scores["trained_without_plasticity"]) < 0.2, scores
    assert abs(scores["plasticity_ablated"]) < 0.2, scores
    assert scores["trained"] > scores["trained_without_plasticity"] + 0.25, scores


def test_report_in_chunks_is_deterministic_and_weighted_by_chunk_size(monkeypatch):
    args = agent.parse_args(TINY)
    policy = agent.build(args)[0]
    monkeypatch.setattr(agent, "REPORT_CHUNK", 4)  # 6 episodes: chunks of 4 and 2
    a = agent.report(policy, args, "heldout", 6, 123)
    b = agent.report(policy, args, "heldout", 6, 123)
    assert a == b
    assert a["episodes"] == 6
    assert abs(a["correct"] + a["wrong"] + a["no_choice"] - 1.0) < 1e-9
    # every count is a whole number of episodes out of 6
    for k in ("correct", "wrong"):
        assert abs(a[k] * 6 - round(a[k] * 6)) < 1e-6


def test_mixed_training_reports_sugar_and_shock_separately(tmp_path):
    args = agent.parse_args([*TINY, "--reinforcement", "mixed"])
    policy = agent.build(args)[0]
    out = agent.heldout_reports(policy, args, "heldout")
    sugar, shock = out["heldout_reward"], out["heldout_punishment"]
    # the same episodes (starts) under each reinforcement: CS+ PI = correct - wrong after
    # sugar and wrong - correct after shock
    assert sugar["performance_index_cs_plus"] == sugar["correct"] - sugar["wrong"]
    assert shock["performance_index_cs_plus"] == shock["wrong"] - shock["correct"]
    assert out["heldout"]["sign_flip"] == min(
        sugar["performance_index_cs_plus"], -shock["performance_index_cs_plus"]
    )
    with pytest.raises(ValueError, match="one reinforcement"):
        agent.report(policy, args, "heldout", 2, 0)
