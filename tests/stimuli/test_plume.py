# moved from tests/test_plume.py
"""Odor plume carried by wind: loading, samplers, generator, cache, rendering."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from flyenv.stimuli.plume import (
    PlumeData,
    flygym_plume_short_path,
    load_plume,
    world_to_body,
)
from flyenv.stimuli.plume_generator import (
    PlumeGeneratorConfig,
    PlumeSolver,
    generate_plume,
    get_plume,
    main,
)
from flyenv.viz.plume_render import render_plume_frame

# A small plume: 40 x 20 mm, 0.2 s recorded after 0.1 s of spin-up (60 solver steps).
TINY = PlumeGeneratorConfig(
    domain_mm=(40.0, 20.0), duration_s=0.2, spinup_s=0.1, source_xy_mm=(5.0, 10.0), seed=3
)


@pytest.fixture(scope="module")
def short() -> PlumeData:
    return load_plume(flygym_plume_short_path())


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory) -> Path:
    return generate_plume(TINY, cache_dir=tmp_path_factory.mktemp("cache"), progress=False).path


@pytest.fixture(scope="module")
def tiny(tiny_path) -> PlumeData:
    return load_plume(tiny_path)


# ------------------------------------------------------------------ flygym's plume


def test_plume_short_shapes_units(short):
    assert short.concentration.shape == (60, 320, 480)
    assert short.concentration.dtype == np.float32
    assert short.extent_mm == (240.0, 160.0)
    assert short.velocity_mm_s is None and not short.has_velocity
    # every 10th step of 1/200 s; 1 unit/unit background wind = 2 mm * 140 / s
    assert short.fps == 20.0
    assert short.duration_s == pytest.approx(59 / 20)
    np.testing.assert_allclose(short.nominal_wind_mm_s, [280.0, 0.0])
    np.testing.assert_allclose(short.source_xy_mm, [10.0, 80.0])
    assert short.source_radius_mm == 2.0


def test_plume_short_odor_moves_at_the_nominal_wind(short):
    """The loaded frame rate and wind are consistent: the odor pattern shifts between
    frames by about wind / fps (measured ~25 cells, nominal 28)."""
    a, b = short.concentration[10], short.concentration[11]
    shifts = np.arange(0, 60)
    err = [np.mean((np.roll(a, s, axis=1)[:, 60:] - b[:, 60:]) ** 2) for s in shifts]
    best_mm = shifts[int(np.argmin(err))] * short.cell_size_mm
    expected_mm = short.nominal_wind_mm_s[0] / short.fps
    assert abs(best_mm - expected_mm) < 0.2 * expected_mm


def test_plume_short_matches_flygym_arena(short):
    """At cell centres and frame times, our sampler returns flygym's OdorPlumeArena
    values (same row = y, col = x convention)."""
    from flygym.examples.olfaction import OdorPlumeArena

    arena = OdorPlumeArena(
        flygym_plume_short_path(), main_camera_name="", plume_simulation_fps=short.fps
    )
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, 320, 4), rng.integers(0, 480, 4)
    xy = np.stack([(cols + 0.5) * 0.5, (rows + 0.5) * 0.5], -1)
    for frame in (0, 17, 59):
        arena.curr_time = frame / short.fps + 1e-9
        ref = arena.get_olfaction(np.concatenate([xy, np.ones((4, 1))], 1))[0]
        conc, wind, inside = short.sample(frame / short.fps, xy)
        np.testing.assert_allclose(conc, ref, rtol=1e-6)
        assert inside.all()
        np.testing.assert_allclose(wind, np.tile([280.0, 0.0], (4, 1)))


# ------------------------------------------------------------------ samplers


def _random_queries(plume: PlumeData, b: int, w: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ex, ey = plume.extent_mm
    xy = rng.uniform([-5.0, -5.0], [ex + 5.0, ey + 5.0], size=(b, w, 2))
    t = rng.uniform(-0.05, plume.duration_s + 0.2, size=b)
    return t, xy


@pytest.mark.parametrize("time_mode", ["clamp", "loop"])
@pytest.mark.parametrize("time_interp", ["linear", "nearest"])
@pytest.mark.parametrize("which", ["short", "tiny"])
def test_numpy_and_torch_samplers_agree(request, which, time_mode, time_interp):
    plume = dataclasses.replace(
        request.getfixturevalue(which), time_mode=time_mode, time_interp=time_interp
    )
    t, xy = _random_queries(plume, 64, 8)
    c_t, w_t, in_t = plume.sample_torch(torch.tensor(t), torch.tensor(xy, dtype=torch.float32))
    assert c_t.shape == (64, 8) and w_t.shape == (64, 8, 2) and in_t.shape == (64, 8)
    c_n, w_n, in_n = plume.sample(np.repeat(t, 8), xy.reshape(-1, 2))
    assert 0 < in_n.sum() < in_n.size  # the queries cover inside and outside
    np.testing.assert_array_equal(in_t.numpy().ravel(), in_n)
    np.testing.assert_allclose(c_t.numpy().ravel(), c_n, atol=1e-5)
    np.testing.assert_allclose(w_t.numpy().reshape(-1, 2), w_n, rtol=1e-5, atol=1e-3)


def test_torch_sampler_scalar_time_and_dtype(short):
    _, xy = _random_queries(short, 4, 3)
    xt = torch.tensor(xy)  # float64: sampled in float64
    c, _, _ = short.sample_torch(0.7, xt)
    assert c.dtype == torch.float64
    c_n, _, _ = short.sample(0.7, xy.reshape(-1, 2))
    np.testing.assert_allclose(c.numpy().ravel(), c_n, atol=1e-6)


def test_torch_gradients_wrt_positions(short):
    tp = short.to_torch()
    # points along the plume centre line, downstream of the source
    xs = torch.linspace(20.0, 200.0, 64, dtype=torch.float32)
    xy = torch.stack([xs, torch.full_like(xs, 80.0)], -1).reshape(8, 8, 2).requires_grad_()
    conc, _, inside = tp.sample(torch.full((8,), 1.0), xy)
    assert inside.all() and conc.max() > 0.1
    conc.sum().backward()
    assert torch.isfinite(xy.grad).all()
    assert (xy.grad.norm(dim=-1) > 0).float().mean() > 0.5
    # finite-difference check of one component (linear in position within a cell)
    p = xy.detach()[0, 3]
    eps = 1e-3
    for axis in range(2):
        d = torch.zeros(2)
        d[axis] = eps
        hi, _, _ = tp.sample(1.0, (p + d).reshape(1, 1, 2))
        lo, _, _ = tp.sample(1.0, (p - d).reshape(1, 1, 2))
        fd = float((hi - lo) / (2 * eps))
        assert xy.grad[0, 3, axis].item() == pytest.approx(fd, rel=2e-2, abs=1e-3)


def test_torch_gradients_of_wind_exist(tiny):
    xy = torch.tensor([[[20.0, 10.0], [30.0, 11.0]]], requires_grad=True)
    _, wind, _ = tiny.sample_torch(0.1, xy)
    wind[..., 1].sum().backward()
    assert torch.isfinite(xy.grad).all() and xy.grad.abs().sum() > 0


def test_outside_domain(short, tiny):
    outside = np.array([[-1.0, 80.0], [240.0, 80.0], [100.0, -0.01], [100.0, 160.0]])
    for plume in (short, tiny):
        ex, ey = plume.extent_mm
        pts = outside * [ex / 240, ey / 160]
        conc, wind, inside = plume.sample(0.1, pts)
        assert not inside.any()
        np.testing.assert_array_equal(conc, 0.0)
        np.testing.assert_allclose(wind, np.tile(plume.nominal_wind_mm_s, (4, 1)))
        xy = torch.tensor(pts, dtype=torch.float32, requires_grad=True)
        c_t, w_t, in_t = plume.sample_torch(torch.tensor(0.1), xy[None])
        assert not in_t.any() and (c_t == 0).all()
        np.testing.assert_allclose(w_t[0].detach().numpy(), wind)
        (c_t.sum() + w_t.sum()).backward()
        assert (xy.grad == 0).all()


def test_time_clamp_loop_and_interpolation(short):
    xy = np.array([[60.0, 80.0], [120.0, 81.0], [30.5, 79.0]])
    last = short.n_frames - 1
    at = {k: short.sample(k / short.fps, xy)[0] for k in (0, 1, last)}
    # clamp (default): past the end holds the last frame, before 0 holds the first
    np.testing.assert_array_equal(short.sample(100.0, xy)[0], at[last])
    np.testing.assert_array_equal(short.sample(-1.0, xy)[0], at[0])
    # linear: half-way between frames 0 and 1 is their mean
    np.testing.assert_allclose(short.sample(0.5 / short.fps, xy)[0], (at[0] + at[1]) / 2, 1e-6)
    nearest = dataclasses.replace(short, time_interp="nearest")
    np.testing.assert_array_equal(nearest.sample(0.4 / short.fps, xy)[0], at[0])
    np.testing.assert_array_equal(nearest.sample(0.6 / short.fps, xy)[0], at[1])
    # loop: frame T is frame 0 again
    loop = dataclasses.replace(short, time_mode="loop")
    np.testing.assert_allclose(loop.sample(short.n_frames / short.fps, xy)[0], at[0], atol=1e-6)
    assert not np.allclose(at[0], at[last])


def test_world_to_body():
    wind = np.array([[280.0, 0.0]])
    # a fly heading +y (90 deg) feels the +x wind from its right: body y (left) < 0
    np.testing.assert_allclose(world_to_body(wind, math.pi / 2), [[0.0, -280.0]], atol=1e-9)
    t = world_to_body(torch.tensor(wind), torch.tensor(math.pi, dtype=torch.float64))
    np.testing.assert_allclose(t.numpy(), [[-280.0, 0.0]], atol=1e-9)


def test_bad_inputs(short, tmp_path):
    with pytest.raises(ValueError, match="expected \\(N, 2\\)"):
        short.sample(0.0, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="\\(B, W, 2\\)"):
        short.sample_torch(0.0, torch.zeros(5, 2))
    with pytest.raises(ValueError, match="time_s has shape"):
        short.sample_torch(torch.zeros(3), torch.zeros(5, 1, 2))
    missing = tmp_path / "nope.h5"
    with pytest.raises(ValueError, match="nope.h5 does not exist"):
        load_plume(missing)
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["other"] = np.zeros(3)
    with pytest.raises(ValueError, match="no 'plume' dataset"):
        load_plume(bad)
    with pytest.raises(ValueError, match="velocity_mm_s has shape"):
        PlumeData(
            np.zeros((2, 4, 4)), 0.5, 10, (1, 1), 1, (1, 0), velocity_mm_s=np.zeros((2, 4, 4))
        )
    with pytest.raises(ValueError, match="time_mode"):
        dataclasses.replace(short, time_mode="wrap")


# ------------------------------------------------------------------ generator


def test_generator_deterministic_from_seed(tiny, tmp_path):
    again = get_plume(TINY, cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(again.concentration, tiny.concentration)
    np.testing.assert_array_equal(again.velocity_mm_s, tiny.velocity_mm_s)
    other = get_plume(dataclasses.replace(TINY, seed=4), cache_dir=tmp_path, progress=False)
    assert not np.array_equal(other.concentration, tiny.concentration)
    assert not np.array_equal(other.velocity_mm_s, tiny.velocity_mm_s)


def test_projection_makes_flow_divergence_free():
    solver = PlumeSolver(TINY)
    for _ in range(30):
        solver.step()
    # relative divergence |div u| * dx / U: the net flux imbalance of a cell in units
    # of the flux through one face; ~1e-15 (round-off) after the direct solve
    rel = np.abs(solver.divergence()).max() * solver.d / solver.U
    assert rel < 1e-10
    assert solver.max_divergence_after < 1e-10
    # ...while the advected + forced field before projection was clearly divergent
    assert solver.max_divergence_before > 1e-3
    # the meander force made the flow non-uniform, with the background wind on average
    assert np.abs(solver.v).max() > 1.0
    assert solver.u.mean() == pytest.approx(TINY.wind_speed_mm_s, rel=0.05)


def test_odor_is_advected_downwind():
    """A released blob (no source, no meander) travels at the wind speed, keeping its mass."""
    cfg = dataclasses.replace(TINY, source_rate_per_s=0.0, meander_noise_mm_s_sqrt_s=(0.0, 0.0))
    solver = PlumeSolver(cfg)
    x, y = solver._c_xy
    solver.conc = np.exp(-((x - 8.0) ** 2 + (y - 10.0) ** 2) / (2 * 1.5**2))

    def centroid() -> np.ndarray:
        m = solver.conc.sum()
        return np.array([(solver.conc * x).sum() / m, (solver.conc * y).sum() / m])

    c0, m0 = centroid(), solver.conc.sum()
    n = 15
    for _ in range(n):
        solver.step()
    moved = centroid() - c0
    expected = cfg.wind_speed_mm_s * n * cfg.sim_dt_s  # 21 mm
    assert moved[0] == pytest.approx(expected, rel=0.03)
    assert abs(moved[1]) < 0.1
    assert solver.conc.sum() == pytest.approx(m0, rel=0.05)


def test_generated_plume_centroid_moves_downwind(tiny):
    """In the recorded plume, odor flows from the source toward +x: the concentration
    centroid of the initial spin-up (from clean air) moves downwind over time."""
    cfg = dataclasses.replace(TINY, spinup_s=0.0, duration_s=0.1)
    solver = PlumeSolver(cfg)
    x = solver._c_xy[0]
    xs = []
    for _ in range(3):
        for _ in range(5):
            solver.step()
        xs.append((solver.conc * x).sum() / solver.conc.sum())
    assert xs[0] < xs[1] < xs[2]
    assert xs[0] > TINY.source_xy_mm[0] - TINY.source_radius_mm
    # and in the recorded plume, odor lies downwind of the source
    ex = tiny.extent_mm[0]
    col_x = (np.arange(tiny.shape_hw[1]) + 0.5) * tiny.cell_size_mm
    mass_x = tiny.concentration.sum(axis=(0, 1))
    assert (mass_x * col_x).sum() / mass_x.sum() > tiny.source_xy_mm[0] + 0.2 * ex


def test_cache_hit_and_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv("FLYENV_CACHE_DIR", str(tmp_path / "envcache"))
    cfg = dataclasses.replace(TINY, duration_s=0.02, spinup_s=0.0)
    first = generate_plume(cfg, progress=False)
    assert not first.from_cache
    assert first.path.parent == tmp_path / "envcache"
    assert first.path.name == f"plume_{cfg.cache_key()}.h5"
    stamp = first.path.stat().st_mtime_ns
    second = generate_plume(cfg, progress=False)
    assert second.from_cache and second.path == first.path
    assert first.path.stat().st_mtime_ns == stamp  # the file was not rewritten
    # equal configs spelled differently share a key; any change makes a new one
    assert dataclasses.replace(cfg, domain_mm=[40, 20]).cache_key() == cfg.cache_key()
    assert dataclasses.replace(cfg, seed=9).cache_key() != cfg.cache_key()
    # use_cache=False regenerates; a truncated file is regenerated, not trusted
    assert not generate_plume(cfg, progress=False, use_cache=False).from_cache
    first.path.write_bytes(b"not hdf5")
    assert not generate_plume(cfg, progress=False).from_cache
    # atomic writes leave no temporary files behind
    assert sorted(p.name for p in first.path.parent.iterdir()) == [first.path.name]


def test_round_trip_through_load_plume(tiny, tiny_path):
    n_frames = round(TINY.duration_s * TINY.fps) + 1
    assert tiny.concentration.shape == (n_frames, 40, 80)
    assert tiny.velocity_mm_s.shape == (n_frames, 40, 80, 2)
    assert tiny.extent_mm == TINY.domain_mm
    assert tiny.fps == TINY.fps and tiny.cell_size_mm == TINY.cell_size_mm
    np.testing.assert_allclose(tiny.source_xy_mm, TINY.source_xy_mm)
    np.testing.assert_allclose(tiny.nominal_wind_mm_s, [TINY.wind_speed_mm_s, 0.0])
    assert tiny.metadata["seed"] == TINY.seed
    assert PlumeGeneratorConfig(**tiny.metadata["config"]) == TINY
    assert tiny.metadata["max_rel_divergence_after_projection"] < 1e-10
    assert np.isfinite(tiny.concentration).all() and tiny.concentration.max() > 0.1
    assert tiny.velocity_mm_s[..., 0].mean() == pytest.approx(TINY.wind_speed_mm_s, rel=0.05)
    with h5py.File(tiny_path, "r") as f:  # flygym's layout is kept
        assert f["plume"].shape == tiny.concentration.shape
        assert {"inflow_pos", "inflow_radius", "inflow_scaler", "velocity"} <= set(f)


def test_config_validation():
    with pytest.raises(ValueError, match="whole number of solver steps"):
        PlumeGeneratorConfig(fps=60.0, sim_dt_s=0.005)
    with pytest.raises(ValueError, match="outside the domain"):
        PlumeGeneratorConfig(source_xy_mm=(500.0, 10.0))
    with pytest.raises(ValueError, match="multiple"):
        PlumeGeneratorConfig(domain_mm=(160.5, 80.0))
    with pytest.raises(ValueError, match="wind_speed_mm_s"):
        PlumeGeneratorConfig(wind_speed_mm_s=0.0)


def test_cli_writes_and_reports(tmp_path, capsys):
    out = tmp_path / "p.h5"
    args = ["--duration-s", "0.02", "--spinup-s", "0", "--seed", "1", "--domain-mm", "40", "20"]
    args += ["--source-xy-mm", "5", "10", "--out", str(out), "--no-progress"]
    main(args)
    assert f"generated: {out}" in capsys.readouterr().out
    assert load_plume(out).n_frames == 2
    main(args)
    assert f"found in cache: {out}" in capsys.readouterr().out


def test_render_plume_frame(tiny, short):
    img = render_plume_frame(tiny, 0.1, wind_arrows=8)
    assert img.shape == (40, 80, 3) and img.dtype == np.uint8
    small = render_plume_frame(short, 1.0, size=(80, 120))
    assert small.shape == (80, 120, 3)
    # odor is drawn (non-white) along the plume's row, clean air stays white
    row = 80 - round(80 * 80 / 160)  # image row of y = 80 mm (top row = max y)
    assert (small[row - 2 : row + 2].min(axis=-1) < 200).any()
    assert (small[:5] == 255).all()


@pytest.mark.slow
def test_default_config_generates(tmp_path):
    res = generate_plume(PlumeGeneratorConfig(), cache_dir=tmp_path, progress=False)
    plume = load_plume(res.path)
    assert plume.extent_mm == (160.0, 80.0) and plume.n_frames == 251
    assert plume.metadata["max_rel_divergence_after_projection"] < 1e-10
    conc, wind, inside = plume.sample(2.0, np.array([[80.0, 40.0]]))
    assert inside.all() and np.isfinite(wind).all()
