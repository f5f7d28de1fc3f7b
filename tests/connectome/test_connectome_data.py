# moved from tests/test_connectome_data.py
"""Data layer: FlyWire mushroom body and DoOR loaders, the ORN front end."""

import json
import shutil

import numpy as np
import pytest
import torch

from flyenv.connectome.door import DATA_DIR as DOOR_DIR
from flyenv.connectome.door import OrnConfig, OrnFrontEnd, load_door
from flyenv.connectome.mushroom_body import DATA_DIR as MB_DIR
from flyenv.connectome.mushroom_body import (
    ConnectomeDataError,
    load_mushroom_body,
    sha256_of,
)

NO_RECEPTOR = ("VA7m", "VM6", "VP1d", "VP1l+", "VP1m", "VP2")
PALP = {"VA4", "VA7l", "VC1", "VC2", "VM7d", "VM7v"}


@pytest.fixture(scope="module")
def mb():
    return load_mushroom_body()


@pytest.fixture(scope="module")
def front(mb):
    return OrnFrontEnd(mb.glomeruli)


# ---------------------------------------------------------------------- mushroom body
def test_counts_match_the_readme(mb):
    assert mb.n_neurons == 2935
    sizes = {k: len(v) for k, v in mb.populations.items()}
    assert sizes == {"PN": 124, "KC": 2597, "APL": 1, "MBON": 48, "DAN": 165}
    assert len(mb.glomeruli) == 55 and list(mb.glomeruli) == sorted(mb.glomeruli)
    assert len(mb.pn_glomerulus) == 124 and set(mb.pn_glomerulus) == set(mb.glomeruli)
    assert mb.signed_counts.shape == (2935, 2935) and mb.signed_counts.nnz == 24777
    edges = {("PN", "KC"): 9841, ("APL", "KC"): 2586, ("KC", "APL"): 2596}
    edges |= {("KC", "MBON"): 7485, ("KC", "KC"): 942}
    for (pre, post), n in edges.items():
        assert mb.block(pre, post).nnz == n, (pre, post)
    assert mb.dan_counts.nnz == 303
    meta = json.loads((MB_DIR / "meta.json").read_text())
    assert mb.sha256 == meta["sha256_npz"]


def test_signs_follow_transmitters(mb):
    nt_sign = {"acetylcholine": 1, "gaba": -1, "glutamate": -1, "dopamine": 0}
    np.testing.assert_array_equal(mb.neurons.sign, [nt_sign[t] for t in mb.neurons.nt])
    assert mb.neurons.sign.dtype == np.int8
    w = mb.signed_counts.tocoo()
    np.testing.assert_array_equal(np.sign(w.data), mb.neurons.sign[w.row])
    assert np.abs(w.data).min() >= 5  # edges kept at >= 5 synapses
    assert (mb.block("PN", "KC").data > 0).all()  # cholinergic PNs
    assert (mb.block("APL", "KC").data < 0).all()  # GABAergic APL
    assert (mb.block("DAN", "KC").nnz == 0) and (mb.block("DAN", "MBON").nnz == 0)


def test_block_is_the_full_matrix_in_population_order(mb):
    order = np.concatenate([mb.populations[p] for p in mb.populations])
    np.testing.assert_array_equal(np.sort(order), np.arange(mb.n_neurons))  # a partition
    dense = mb.signed_counts.toarray()
    total = 0
    for pre in mb.populations:
        for post in mb.populations:
            b = mb.block(pre, post)
            rows, cols = mb.populations[pre], mb.populations[post]
            assert b.shape == (len(rows), len(cols))
            np.testing.assert_array_equal(b.toarray(), dense[np.ix_(rows, cols)])
            total += b.nnz
    assert total == mb.signed_counts.nnz
    with pytest.raises(KeyError, match="unknown population 'ORN'"):
        mb.block("ORN", "KC")


def test_glomerulus_to_pn_membership(mb):
    m = mb.glomerulus_to_pn()
    assert m.shape == (55, 124)
    np.testing.assert_array_equal(m.sum(axis=0).A1, np.ones(124))
    for g, glom in enumerate(mb.glomeruli):
        members = m[g].indices
        assert len(members) >= 1 and set(mb.pn_glomerulus[members]) == {glom}


def test_loaded_arrays_are_read_only_and_calls_independent(mb):
    with pytest.raises(ValueError):
        mb.neurons.sign[0] = 1
    again = load_mushroom_body()
    again.signed_counts.data[:] = 0
    assert load_mushroom_body().signed_counts.data.any()


def _copy_mb(tmp_path):
    folder = tmp_path / "mb"
    shutil.copytree(MB_DIR, folder)
    for p in folder.iterdir():
        p.chmod(0o644)
    return folder


def test_corrupted_file_fails_with_a_clear_error(tmp_path):
    folder = _copy_mb(tmp_path)
    npz = folder / "mb_fafb783.npz"
    raw = bytearray(npz.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 8] = bytes(
        b ^ 0xFF for b in raw[len(raw) // 2 : len(raw) // 2 + 8]
    )
    npz.write_bytes(bytes(raw))
    with pytest.raises(ConnectomeDataError) as err:
        load_mushroom_body(folder)
    msg = str(err.value)
    assert str(npz) in msg and "corrupted" in msg and "sha256" in msg
    assert "Reinstall flyenv" in msg
    # Without the checksum a truncated archive still fails loudly, not silently.
    npz.write_bytes(bytes(raw[: len(raw) // 3]))
    with pytest.raises(ConnectomeDataError, match="cannot be read"):
        load_mushroom_body(npz, verify=False)


def test_missing_files_name_the_expected_path(tmp_path):
    with pytest.raises(ConnectomeDataError) as err:
        load_mushroom_body(tmp_path)
    assert str(tmp_path / "mb_fafb783.npz") in str(err.value)
    assert "flyenv/data/flywire_mb_783" in str(err.value)
    folder = _copy_mb(tmp_path)
    (folder / "meta.json").unlink()
    with pytest.raises(ConnectomeDataError, match="meta.json is missing"):
        load_mushroom_body(folder)
    assert load_mushroom_body(folder, verify=False).n_neurons == 2935


def test_sha256_of_shipped_copy_matches_shared_source_readme():
    assert sha256_of(MB_DIR / "mb_fafb783.npz") == (
        "2217fa82dbea57f30a13d90d757a5233d8b06b66acc30a0306837d1176bf6b6c"
    )


# ---------------------------------------------------------------------- DoOR
def test_door_shapes_and_mapping():
    d = load_door()
    # 693 data rows = the SFR row + 692 odorants.
    assert d.responses.shape == (692, 78) == (len(d.odor_names), len(d.receptors))
    assert len(d.cas) == len(d.inchikey) == 692 and d.spontaneous.shape == (78,)
    finite = d.responses[np.isfinite(d.responses)]
    assert finite.min() >= 0.0 and finite.max() <= 1.0
    assert 0.10 < np.isfinite(d.responses).mean() < 0.20  # "about 14% of cells are filled"
    assert d.receptor_glomerulus["Or42b"] == "DM1"
    assert d.glomerulus_receptors["DM1"] == ("Or42b",)
    assert "ac3A" in d.glomerulus_receptors["DL2d"] and "ac3A" in d.glomerulus_receptors["DL2v"]
    assert set(d.glomerulus_receptors["DM5"]) == {"ab2B", "Or85a"}
    used = {u for units in d.glomerulus_receptors.values() for u in units}
    assert "Or33b" not in used and "ac1" not in used  # multi-ORN units are not used


def test_glomeruli_without_receptor_and_organs(front):
    assert front.glomeruli_without_receptor == NO_RECEPTOR
    palp = {
        g for g, o in zip(front.glomeruli, front.glomerulus_organ, strict=True) if o != "antenna"
    }
    assert palp == PALP


def test_odor_lookup_by_name_cas_and_inchikey(front):
    i = front.odor_index("ethyl acetate")
    assert front.odor_index("141-78-6") == i
    assert front.odor_index("Ethyl Acetate ") == i
    assert front.odor_index("XEKOWRVHYACXOJ-UHFFFAOYSA-N") == i
    np.testing.assert_array_equal(
        front.response_matrix(["ethyl acetate"]), front.response_matrix(["141-78-6"])
    )
    with pytest.raises(ValueError, match="unknown odor 'isoamyl acetate'.*isopentyl acetate"):
        front.odor_index("isoamyl acetate")
    with pytest.raises(ValueError, match="ambiguous.*5392-40-5"):
        front.odor_index("citral")


def test_response_is_door_minus_spontaneous_averaged_per_glomerulus(front):
    d = front.door
    row = front.odor_index("ethyl acetate")
    col = {r: i for i, r in enumerate(d.receptors)}
    delta = d.responses[row] - np.nan_to_num(d.spontaneous)
    r = front.response_matrix(["ethyl acetate"])[0]
    g = front.glomeruli.index("DM1")
    assert r[g] == pytest.approx(delta[col["Or42b"]])
    # Several units of one glomerulus: the mean of the measured ones.
    for odor in ("ethyl acetate", "benzaldehyde", "1-hexanol"):
        row = front.odor_index(odor)
        delta = d.responses[row] - np.nan_to_num(d.spontaneous)
        units = [col[u] for u in d.glomerulus_receptors["DM5"]]
        expect = np.nanmean(delta[units]) if np.isfinite(delta[units]).any() else 0.0
        got = front.response_matrix([odor])[0, front.glomeruli.index("DM5")]
        assert got == pytest.approx(expect)
    assert (r < 0).any() and np.all(np.abs(r) <= 1.0)  # inhibition is kept


def test_missing_value_policy(mb):
    zero = OrnFrontEnd(mb.glomeruli)
    r = zero.response_matrix(["ethyl acetate"])[0]
    missing = ["D", "DA1"]  # units exist, ethyl acetate not measured
    for g in missing:
        assert r[mb.glomeruli.index(g)] == 0.0
    assert np.isfinite(r).all()
    rates = zero.activation(["ethyl acetate"], np.array([0.05]))
    cfg = zero.config
    for g in missing + list(NO_RECEPTOR):
        assert rates[mb.glomeruli.index(g)] == pytest.approx(cfg.spontaneous_rate_hz)
    strict = OrnFrontEnd(mb.glomeruli, config=OrnConfig(missing="error"))
    with pytest.raises(ValueError, match=r"\('ethyl acetate', 'D'\).*missing='zero'"):
        strict.response_matrix(["ethyl acetate"])
    with pytest.raises(ValueError, match="missing='nan'"):
        OrnFrontEnd(mb.glomeruli, config=OrnConfig(missing="nan"))


def test_activation_spontaneous_monotonic_saturating(front):
    cfg = front.config
    odors = ["ethyl acetate"]
    r = front.response_matrix(odors)[0]
    up, down = int(np.argmax(r)), int(np.argmin(r))
    assert r[up] > 0.5 and r[down] < -0.05
    conc = np.concatenate([[0.0], np.logspace(-5, 3, 60)])[:, None]
    rates = front.activation(odors, conc)  # (61, G)
    np.testing.assert_allclose(rates[0], cfg.spontaneous_rate_hz)
    assert np.all(np.diff(rates[:, up]) > 0) and np.all(np.diff(rates[:, down]) < 0)
    assert rates.min() >= 0.0 and rates.max() < cfg.max_rate_hz
    assert rates[-1, up] > 0.99 * cfg.max_rate_hz  # saturates at max
    assert rates[-1, down] < 0.01 * cfg.spontaneous_rate_hz  # inhibition down to ~0 Hz
    # Half saturation: drive u = K gives half-way from spontaneous to max.
    c_half = cfg.half_saturation / r[up]
    half = front.activation(odors, np.array([c_half]))[up]
    assert half == pytest.approx((cfg.spontaneous_rate_hz + cfg.max_rate_hz) / 2)
    # Mixtures: drives add before saturation; batch axes broadcast.
    mix = front.activation(["ethyl acetate", "benzaldehyde"], np.full((3, 2, 2), 0.01))
    assert mix.shape == (3, 2, 55)


def test_activation_rejects_bad_concentration(front):
    with pytest.raises(ValueError, match="one entry per odor"):
        front.activation(["ethyl acetate"], np.ones(2))
    with pytest.raises(ValueError, match=">= 0"):
        front.activation(["ethyl acetate"], np.array([-1.0]))
    with pytest.raises(TypeError, match="sequence of names"):
        front.response_matrix("ethyl acetate")
    with pytest.raises(ValueError, match="spontaneous_rate_hz < max_rate_hz"):
        OrnConfig(spontaneous_rate_hz=300.0).validate()


def test_torch_activation_matches_numpy_and_is_differentiable(front):
    odors = ["ethyl acetate", "benzaldehyde", "2-heptanone"]
    conc = np.random.default_rng(0).uniform(0, 0.05, (5, 3))
    ref = front.activation(odors, conc)
    resp = torch.tensor(front.response_matrix(odors))
    c = torch.tensor(conc, requires_grad=True)
    out = OrnFrontEnd.activation_torch(resp, c, front.config)
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-12)
    out.sum().backward()
    assert torch.isfinite(c.grad).all() and (c.grad != 0).all()


def test_corrupted_or_missing_door_file(tmp_path):
    folder = tmp_path / "door"
    shutil.copytree(DOOR_DIR, folder)
    f = folder / "door_response_matrix.csv"
    f.chmod(0o644)
    f.write_text(f.read_text().replace("0.0627144154948233", "0.9627144154948233", 1))
    with pytest.raises(ConnectomeDataError, match="door_response_matrix.csv is corrupted"):
        load_door(folder)
    f.unlink()
    with pytest.raises(ConnectomeDataError) as err:
        load_door(folder)
    assert str(f) in str(err.value) and "flyenv/data/door" in str(err.value)
