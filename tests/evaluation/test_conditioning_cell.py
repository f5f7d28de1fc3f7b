"""The OdorConditioning sweep cell: outcomes add up, the file is written, bad keys fail."""

from __future__ import annotations

import json

import pytest

from flyenv.evaluation.conditioning_cell import conditioning_cell


def test_scripted_agent_cell_reports_a_consistent_performance_index(tmp_path):
    out = conditioning_cell({"agent": "remembered_odor", "n_episodes": 16}, 3, tmp_path)
    assert out["correct"] + out["wrong"] + out["no_choice"] == pytest.approx(1.0)
    assert out["performance_index"] == pytest.approx(out["correct"] - out["wrong"])
    assert out["performance_index_cs_plus"] == pytest.approx(out["performance_index"])  # sugar
    saved = json.loads((tmp_path / "conditioning_cell.json").read_text())
    assert saved["n_episodes"] == 16
    ep = saved["episodes"]  # per episode: the pair, its CS+, the outcome; they add up
    assert len(ep["outcome"]) == len(ep["odors"]) == len(ep["cs_plus_odor"]) == 16
    assert all(cs in pair for cs, pair in zip(ep["cs_plus_odor"], ep["odors"], strict=True))
    plus = sum(c is True for c in ep["chose_cs_plus"]) - sum(
        c is False for c in ep["chose_cs_plus"]
    )
    assert plus / 16 == pytest.approx(out["performance_index_cs_plus"])
    assert sum(ep["outcome"]) / 16 == pytest.approx(out["performance_index"])
    assert out["kc_coding_level"] != out["kc_coding_level"]  # nan: the scripted agent has no KCs


def test_untrained_plastic_brain_runs_and_unknown_keys_fail(tmp_path):
    out = conditioning_cell(
        {"agent": "plastic_brain", "n_episodes": 2, "test_s": 0.2, "reinforcement": "punishment"},
        3,
        tmp_path,
    )
    assert -1.0 <= out["performance_index_cs_plus"] <= 1.0
    assert 0.0 < out["kc_coding_level"] < 0.5  # sparse KC code while smelling
    with pytest.raises(ValueError, match="unknown config keys"):
        conditioning_cell({"agnet": "x"}, 0, tmp_path)


def test_brain_config_reaches_the_brain(tmp_path):
    """brain_config overrides the BPTT agent's brain settings: a field the brain does not
    have fails with the brain's own error instead of being ignored."""
    cfg = {"agent": "brain", "n_episodes": 2, "test_s": 0.2}
    out = conditioning_cell({**cfg, "brain_config": {"lateral_horn": False}}, 3, tmp_path)
    assert out["config"]["brain_config"] == {"lateral_horn": False}
    with pytest.raises(ValueError, match="no_such_field"):
        conditioning_cell({**cfg, "brain_config": {"no_such_field": 1}}, 3, tmp_path)


def test_similarity_breakdown_known_answer():
    """Pairs 0-3 of the panel, PI +1 on the two most similar pairs and -1 on the others:
    the similar half scores +1, the dissimilar half -1, and r is positive."""
    import numpy as np

    from flyenv.evaluation.conditioning_cell import similarity_breakdown
    from flyenv.tasks.odor_choice import ODOR_PANEL, odor_similarity

    pairs = [(ODOR_PANEL[0], ODOR_PANEL[k]) for k in range(1, 5)]
    sims = np.array([odor_similarity(*p) for p in pairs])
    top = set(np.argsort(sims)[2:].tolist())
    pair_index = np.repeat(np.arange(4), 3)
    outcome = np.array([1 if i in top else -1 for i in pair_index])
    out = similarity_breakdown(pairs, pair_index, outcome)
    assert out["performance_index_similar_pairs"] == 1.0
    assert out["performance_index_dissimilar_pairs"] == -1.0
    assert out["pi_similarity_r"] > 0.5


SHORT_TRACE = {
    "pair_set": "train",
    "n_episodes": 128,
    "brain_config": {"lateral_horn": False, "mbon_dn_init_mv": 0.0},
    "plasticity": {
        "eligibility_tau_ms": 20.0,
        "depression_rate_per_s": 1.0,
        "valence_init_mv": 60.0,
        "avoid_weight": 1.589,
    },
}
LONG_TRACE = {"eligibility_tau_ms": 1000.0, "depression_rate_per_s": 5.0, "valence_init_mv": 30.0}


def test_plastic_mushroom_body_choice_beats_its_controls(tmp_path):
    """The short-trace design (docs/results/mushroom_body_learning.md) on training pairs,
    start set 1 (a choice set, not a reporting one), 128 episodes: within-episode
    dopamine-gated plasticity after sugar gives PI CS+ +0.57 (measured); the same brain
    without plasticity, or without reinforcement, does not choose the CS+ (~0); the first
    design's 1 s eligibility trace and strong depression, which also depress the CS-,
    give +0.17. The 95 % binomial half-width at n = 128 is about 0.09."""
    cfg = {**SHORT_TRACE, "agent": "plastic_brain"}
    learned = conditioning_cell(cfg, 1, tmp_path / "a")
    off = conditioning_cell({**cfg, "agent": "brain"}, 1, tmp_path / "b")
    none = conditioning_cell({**cfg, "reinforcement": "none"}, 1, tmp_path / "c")
    long_trace = conditioning_cell(
        {**cfg, "plasticity": {**cfg["plasticity"], **LONG_TRACE}}, 1, tmp_path / "d"
    )
    assert learned["performance_index_cs_plus"] > 0.4
    assert abs(off["performance_index_cs_plus"]) < 0.05
    assert abs(none["performance_index_cs_plus"]) < 0.1
    assert learned["performance_index_cs_plus"] > long_trace["performance_index_cs_plus"] + 0.2


def test_shock_flips_the_choice_when_naive_odors_attract(tmp_path):
    """With the avoidance MBONs weighted 1 (naive odors attract through the mushroom
    body), the same plasticity makes flies choose the CS+ after sugar (measured +0.19) and
    the CS- after shock (PI CS+ -0.38): the sign of PI CS+ flips with the reinforcement."""
    cfg = {**SHORT_TRACE, "agent": "plastic_brain"}
    cfg["plasticity"] = {**cfg["plasticity"], "avoid_weight": 1.0}
    sugar = conditioning_cell(cfg, 1, tmp_path / "a")
    shock = conditioning_cell({**cfg, "reinforcement": "punishment"}, 1, tmp_path / "b")
    assert sugar["performance_index_cs_plus"] > 0.08
    assert shock["performance_index_cs_plus"] < -0.2
    assert shock["performance_index"] == -shock["performance_index_cs_plus"]


def test_the_cell_runs_the_same_protocol_on_the_mujoco_body(tmp_path):
    """body="mujoco": one MuJoCo episode after the other, the agent's memory reset before
    each. The scripted memory agent chooses the CS- after shock in both episodes (as it
    does in 88 % of twin episodes), so PI = +1 and PI CS+ = -1."""
    cfg = {"agent": "remembered_odor", "body": "mujoco", "n_episodes": 2}
    out = conditioning_cell({**cfg, "reinforcement": "punishment"}, 3, tmp_path)
    assert out["performance_index"] == 1.0 and out["performance_index_cs_plus"] == -1.0
    assert (
        json.loads((tmp_path / "conditioning_cell.json").read_text())["config"]["body"] == "mujoco"
    )
    with pytest.raises(ValueError, match="body='mjc'"):
        conditioning_cell({**cfg, "body": "mjc"}, 3, tmp_path)


def test_an_untrained_recurrent_ppo_zip_chooses_as_the_plastic_brain_it_wraps(tmp_path):
    """An SB3 zip as the agent: RecurrentPPO with the plastic brain as its recurrent core,
    saved before any training, runs the same brain deterministically with its state
    (plastic weights included) carried through the episode, so its choices equal the
    "plastic_brain" agent's on the same episodes."""
    import gymnasium as gym
    from sb3_contrib import RecurrentPPO

    from flyenv.rl.recurrent_spiking_policy import RecurrentSpikingPolicy
    from flyenv.rl.sb3_vec_env import TwinVecEnv

    brain_config = {**SHORT_TRACE["brain_config"], "plasticity": SHORT_TRACE["plasticity"]}
    venv = TwinVecEnv(gym.make_vec("flyenv/OdorConditioning-kinematic-v0", num_envs=2), seed=0)
    model = RecurrentPPO(
        RecurrentSpikingPolicy, venv, n_steps=8, policy_kwargs={"brain_config": brain_config}
    )
    model.save(tmp_path / "model.zip")
    cfg = {"pair_set": "train", "n_episodes": 16, "test_s": 1.5}
    zipped = conditioning_cell({**cfg, "agent": str(tmp_path / "model.zip")}, 5, tmp_path / "a")
    brain = conditioning_cell(
        {
            **cfg,
            "agent": "plastic_brain",
            "brain_config": SHORT_TRACE["brain_config"],
            "plasticity": SHORT_TRACE["plasticity"],
        },
        5,
        tmp_path / "b",
    )
    for key in ("correct", "wrong", "performance_index_cs_plus"):
        assert zipped[key] == brain[key]
    assert brain["correct"] > 0  # some flies chose within 1.5 s: the comparison is not vacuous


def test_no_plasticity_ablation_makes_the_reinforcement_irrelevant(tmp_path):
    """``ablation = ["no_plasticity"]`` sets the KC->MBON depression rate to 0: the DANs
    then change nothing, so sugar and no reinforcement give the same episodes; without the
    ablation they differ. Scripted agents cannot be ablated."""
    cfg = {**SHORT_TRACE, "agent": "plastic_brain", "n_episodes": 16, "pair_set": "train"}
    keys = ("correct", "wrong", "kc_coding_level", "performance_index_cs_plus")
    runs = {}
    for ablation in ([], ["no_plasticity"]):
        for reinforcement in ("reward", "none"):
            out = conditioning_cell(
                {**cfg, "reinforcement": reinforcement, "ablation": ablation},
                1,
                tmp_path / f"{reinforcement}{len(ablation)}",
            )
            runs[len(ablation), reinforcement] = tuple(out[k] for k in keys)
    assert runs[1, "reward"] == runs[1, "none"]
    assert runs[0, "reward"] != runs[0, "none"]
    with pytest.raises(ValueError, match="only the brain agents"):
        conditioning_cell({"agent": "remembered_odor", "ablation": "no_plasticity"}, 0, tmp_path)


def test_only_reaching_a_source_counts_as_a_choice():
    """A MuJoCo body that flips made no choice: not the wrong source, and not the CS-."""
    from flyenv.evaluation.conditioning_cell import episode_outcome

    assert episode_outcome({"termination_reason": "chose_rewarded", "chose_cs_plus": True}) == (
        1,
        True,
    )
    assert episode_outcome({"termination_reason": "chose_unrewarded", "chose_cs_plus": True}) == (
        -1,
        True,
    )
    assert episode_outcome({"termination_reason": "flipped", "chose_cs_plus": False}) == (0, None)
    assert episode_outcome({"termination_reason": "physics_unstable"}) == (0, None)
