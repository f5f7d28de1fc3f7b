"""The steering-gain probe (flyenv.rl.steering_gain_probe)."""

import pytest
import torch
from sb3_contrib import RecurrentPPO

from flyenv.rl import sb3_training as rl
from flyenv.rl.recurrent_spiking_policy import RecurrentSpikingPolicy
from flyenv.rl.steering_gain_probe import probe, readout_weight

ENV = "flyenv/OdorTaxis-kinematic-v0"


def _model(mirror: bool):
    kwargs = rl.env_kwargs_for(ENV, "recurrent_spiking", {"time_limit_s": 0.5})
    venv = rl.make_vec_env(ENV, 2, 0, kwargs)
    eval_env = rl.make_vec_env(ENV, 4, 1, kwargs, eval_env=True)
    model = RecurrentPPO(
        RecurrentSpikingPolicy,
        venv,
        n_steps=8,
        batch_size=16,
        policy_kwargs={"trainable": "readout.", "mirror_readout": mirror},
        device="cpu",
        seed=0,
    )
    return model, eval_env


def test_probe_scales_only_the_steering_gain_and_restores_it():
    model, eval_env = _model(mirror=True)
    weight = readout_weight(model)
    before = weight.detach().clone()
    rows = probe(model, eval_env, 4, [0.0, 1.0])
    assert all(r["knob"] == "steering" for r in rows)
    assert [(r["scale"], r["deterministic"]) for r in rows] == [
        (0.0, True),
        (0.0, False),
        (1.0, True),
        (1.0, False),
    ]
    assert all(0.0 <= r["success_rate"] <= 1.0 for r in rows)
    torch.testing.assert_close(weight.detach(), before)
    # the evaluation twin replays its starts: the same deterministic policy scores the same
    again = probe(model, eval_env, 4, [1.0])
    assert again[0]["mean_return"] == pytest.approx(rows[2]["mean_return"])


def test_probe_needs_a_mirror_readout():
    model, _ = _model(mirror=False)
    with pytest.raises(ValueError, match="mirror_readout"):
        readout_weight(model)


@pytest.mark.slow
def test_cli_prints_one_row_per_scale(capsys):
    from flyenv.rl.steering_gain_probe import main

    rows = main(
        [
            "--agent",
            "recurrent_ppo",
            "--scenario",
            "scenarios/recurrent_ppo_odor_taxis_weak_contrast.toml",
            "--eval-starts",
            "3",
            "--scales",
            "1",
            "2",
        ]
    )
    assert len(rows) == 4
    table = capsys.readouterr().out
    assert "| x1 |" in table and "| x2 |" in table
    # --policy-kwargs replaces the scenario's: without mirror_readout there is no d to scale
    with pytest.raises(ValueError, match="mirror_readout"):
        main(
            [
                "--scenario",
                "scenarios/recurrent_ppo_odor_taxis_weak_contrast.toml",
                "--eval-starts",
                "3",
                "--policy-kwargs",
                '{"trainable": "readout.", "brain_config": {"lateral_horn": false}}',
            ]
        )


def test_mbon_dn_knob_scales_both_matrices_and_restores_them():
    from flyenv.rl.steering_gain_probe import _knob_tensors

    model, eval_env = _model(mirror=True)
    brain = model.policy.brain
    ipsi, contra = brain.w_mbon_dn_ipsi.detach().clone(), brain.w_mbon_dn_contra.detach().clone()
    assert [t for t, _ in _knob_tensors(model, "mbon_dn")] == [
        brain.w_mbon_dn_ipsi,
        brain.w_mbon_dn_contra,
    ]
    assert [t for t, _ in _knob_tensors(model, "mbon_dn_ipsi")] == [brain.w_mbon_dn_ipsi]
    assert [t for t, _ in _knob_tensors(model, "mbon_dn_contra")] == [brain.w_mbon_dn_contra]
    with pytest.raises(ValueError, match="knob='mbon_dn_both'"):
        _knob_tensors(model, "mbon_dn_both")
    rows = probe(model, eval_env, 2, [0.0], knob="mbon_dn")
    assert len(rows) == 2 and rows[0]["knob"] == "mbon_dn"
    torch.testing.assert_close(brain.w_mbon_dn_ipsi.detach(), ipsi)
    torch.testing.assert_close(brain.w_mbon_dn_contra.detach(), contra)
    with pytest.raises(ValueError, match="knob"):
        probe(model, eval_env, 2, [1.0], knob="nonsense")
