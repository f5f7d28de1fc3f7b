"""The plume walk-speed probe (flyenv.evaluation.walk_speed_probe)."""

from __future__ import annotations

import pytest

from flyenv.evaluation.walk_speed_probe import main, walk_speed_probe


def test_a_higher_readout_bias_walks_the_untrained_brain_faster():
    rows = walk_speed_probe(None, [-0.3, 0.5], starts=4, start_seed=123)
    assert [r["action_bias_init"] for r in rows] == [-0.3, 0.5]
    slow, fast = rows
    assert slow["scripted_success_rate"] == fast["scripted_success_rate"]  # same starts
    assert slow["both_success"] > 0 and fast["both_success"] > 0
    assert fast["speed_mm_s"] > slow["speed_mm_s"] + 1.0  # mm/s


def test_walk_speed_probe_rejects_empty_input(capsys):
    with pytest.raises(ValueError, match="at least one bias"):
        walk_speed_probe(None, [], starts=4)
    main(["--biases", "0.0", "--starts", "2"])
    assert "| +0.00 |" in capsys.readouterr().out
