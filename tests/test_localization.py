"""Abnormality injection with exact ground truth, and the point-level localization metrics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ecgmodel import abnormalities as ab
from ecgmodel.localization import (
    BenchmarkCase,
    boxes_to_mask,
    build_benchmark,
    choose_threshold,
    dice,
    evaluate,
    load_benchmark,
    make_case,
    mask_from_runs,
    mask_to_runs,
    point_auroc,
    rank_auroc,
)
from ecgmodel.synthetic import synthetic_ecg
from ecgmodel.types import STANDARD_LEADS


@pytest.fixture(scope="module")
def normal():
    rec, _ = synthetic_ecg(seed=11, hr_bpm=72)
    return rec.signal.astype(np.float64), rec.fs, np.asarray(rec.metadata["r_peaks"])


def _einthoven_error(x):
    i, ii = x[0], x[1]
    return max(np.abs(x[2] - (ii - i)).max(), np.abs(x[3] + (i + ii) / 2).max(),
               np.abs(x[4] - (i - ii / 2)).max(), np.abs(x[5] - (ii - i / 2)).max())


@pytest.mark.parametrize("kind", ab.ABNORMALITY_KINDS)
def test_injection_changes_the_signal_only_inside_its_mask(normal, kind):
    x, fs, r = normal
    new, mask, events = ab.inject(kind, x, fs, r, 7)
    assert new.shape == x.shape and mask.shape == x.shape and mask.dtype == bool
    assert mask.any() and events
    assert np.abs(new - x)[~mask].max(initial=0.0) <= 1e-6
    assert np.abs(new - x)[mask].max() > 0.03  # a visible change, mV
    assert _einthoven_error(new) < 1e-6  # limb-lead laws still hold
    leads_in_mask = {STANDARD_LEADS[i] for i in np.flatnonzero(mask.any(axis=1))}
    assert leads_in_mask == {name for e in events for name in e.leads}
    cols = np.flatnonzero(mask.any(axis=0))
    assert min(e.t_start_s for e in events) <= cols[0] / fs
    assert max(e.t_end_s for e in events) >= cols[-1] / fs
    assert all(e.is_artifact == (kind == "noise_burst") for e in events)


@pytest.mark.parametrize("kind", ab.ABNORMALITY_KINDS)
def test_injection_is_seeded_and_reproducible(normal, kind):
    x, fs, r = normal
    a = ab.inject(kind, x, fs, r, 3)
    b = ab.inject(kind, x, fs, r, 3)
    c = ab.inject(kind, x, fs, r, 4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert not (np.array_equal(a[0], c[0]) and np.array_equal(a[1], c[1]))


def test_inferior_st_elevation_raises_ii_iii_avf_with_reciprocal_avl(normal):
    x, fs, r = normal
    new, mask, events = ab.inject_st_elevation(x, fs, r, 1, territory="inferior", magnitude_mv=0.3,
                                               n_beats=3)
    kinds = {e.kind: set(e.leads) for e in events}
    assert kinds["st_elevation"] == {"II", "III", "aVF"}
    assert kinds["st_depression"] == {"aVR", "aVL"}
    assert not mask[STANDARD_LEADS.index("I")].any()
    timing = ab.median_beat_timing(x, fs, r)
    j60 = [k for k in r if mask[1, int(k + (timing.qrs_off_s + 0.06) * fs)]]
    assert len(j60) == 3
    for k in j60:
        s = int(k + (timing.qrs_off_s + 0.06) * fs)
        assert new[STANDARD_LEADS.index("aVF"), s] - x[STANDARD_LEADS.index("aVF"), s] == pytest.approx(0.3)
        assert new[STANDARD_LEADS.index("aVL"), s] - x[STANDARD_LEADS.index("aVL"), s] == pytest.approx(-0.15)


def test_anterior_t_inversion_flips_the_t_wave_in_v2_to_v4_only(normal):
    x, fs, r = normal
    new, mask, _ = ab.inject_t_inversion(x, fs, r, 2, territory="anterior", depth=1.0)
    assert {STANDARD_LEADS[i] for i in np.flatnonzero(mask.any(axis=1))} == {"V2", "V3", "V4"}
    v3 = STANDARD_LEADS.index("V3")
    edges = np.flatnonzero(np.diff(np.r_[0, mask[v3].astype(int), 0]))
    for a, b in edges.reshape(-1, 2):
        peak = a + int(np.argmax(x[v3, a:b]))
        old_t = x[v3, peak] - (x[v3, a] + x[v3, b - 1]) / 2
        new_t = new[v3, peak] - (new[v3, a] + new[v3, b - 1]) / 2
        assert old_t > 0.1 and new_t == pytest.approx(-old_t, rel=0.3)  # upright T -> inverted, depth 1


def test_pvc_is_premature_wide_and_followed_by_a_compensatory_pause(normal):
    x, fs, r = normal
    new, mask, events = ab.inject_pvc(x, fs, r, 5, beat_index=5)
    region = mask[0]
    assert region[r[5]] and not region[r[4]] and not region[r[6]]  # replaces beat 5, neighbours kept
    lead_v1 = STANDARD_LEADS.index("V1")
    peak = np.flatnonzero(region)[0] + int(np.argmax(np.abs(new[lead_v1, region])))
    assert r[4] < peak < r[5]  # comes early
    assert np.abs(new[:, region]).max() > 0.75 * np.abs(x[:, r[4] - 50:r[4] + 50]).max()  # as big as a QRS
    assert "coupling" in events[0].detail


def test_artefact_on_right_arm_spares_lead_iii(normal):
    x, fs, r = normal
    _, mask, events = ab.inject_noise_burst(x, fs, r, 0, kind="emg", electrode="RA")
    assert not mask[STANDARD_LEADS.index("III")].any()
    assert events[0].is_artifact and events[0].kind == "noise_emg"


def test_pvc_on_a_real_ptbxl_normal_is_masked_where_the_pvc_is(ptbxl_dir):
    from ecgmodel.datasets import is_normal, load_ptbxl_table, read_ptbxl_record
    from ecgmodel.signal.rpeaks import detect_r_peaks

    row = next(row for row in load_ptbxl_table(ptbxl_dir) if is_normal(row) and row.strat_fold == 9)
    record = read_ptbxl_record(ptbxl_dir, row)
    case = make_case(record, "pvc", seed=1, source_ecg_id=row.ecg_id)
    diff = np.abs(case.record.signal.astype(np.float64) - record.signal)
    assert diff[~case.mask].max() <= 1e-5  # float32 storage
    biggest = np.unravel_index(np.argmax(diff), diff.shape)
    assert case.mask[biggest]
    r_old = detect_r_peaks(record.signal, record.fs)
    replaced = [k for k in r_old if case.mask[0, k]]
    assert len(replaced) == 1  # exactly one sinus beat is replaced, its neighbours are untouched
    v1 = STANDARD_LEADS.index("V1")
    cols = np.flatnonzero(case.mask[v1])
    pvc_peak = cols[0] + int(np.argmax(np.abs(case.record.signal[v1, cols])))
    assert pvc_peak < replaced[0]  # premature
    assert np.abs(case.record.signal[:, cols]).max() > 1.0  # large ventricular complex, mV


def test_rank_auroc_perfect_inverted_ties_and_brute_force():
    y = np.array([0, 0, 1, 1, 0, 1], dtype=bool)
    s = np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7])
    assert rank_auroc(s, y) == 1.0
    assert rank_auroc(-s, y) == 0.0
    assert rank_auroc(np.ones(6), y) == 0.5
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 40).astype(float)  # many ties
    y = rng.random(40) < 0.4
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0) for a, b in itertools.product(s[y], s[~y])]
    assert rank_auroc(s, y) == pytest.approx(np.mean(pairs))
    assert np.isnan(rank_auroc(s, np.zeros(40, bool)))


def test_point_auroc_of_perfect_and_inverted_maps(normal):
    x, fs, r = normal
    _, mask, _ = ab.inject_pvc(x, fs, r, 0)
    perfect = mask.astype(np.float32) + 0.01 * np.random.default_rng(0).random(mask.shape)
    assert point_auroc(perfect, mask) == 1.0
    assert point_auroc(-perfect, mask) == 0.0
    with_missing_lead = perfect.copy()
    with_missing_lead[3] = np.nan
    assert point_auroc(with_missing_lead, mask) == 1.0
    with pytest.raises(ValueError):
        point_auroc(perfect[:, :-1], mask)


def test_dice_and_threshold_choice():
    g = np.zeros((2, 10), bool)
    g[0, 2:6] = True
    assert dice(g, g) == 1.0 and dice(~g, g) == 0.0 and dice(np.zeros_like(g), np.zeros_like(g)) == 1.0
    score = np.where(g, 2.0, 0.0) + np.linspace(0, 0.5, 20).reshape(2, 10)
    thr = choose_threshold([score], [g])
    assert dice(score > thr, g) == 1.0
    noisy = score.copy()
    noisy[1, 9] = 5.0  # one confident false positive cannot be cut without losing all true ones
    thr = choose_threshold([noisy], [g])
    assert dice(noisy > thr, g) == pytest.approx(2 * 4 / (5 + 4))


def test_boxes_to_mask_spans_leads_and_point_marks():
    mask = boxes_to_mask([(("II", "aVF"), 1.0, 1.5, "STE"), (("V1",), 2.0, 2.0, "PVC")], STANDARD_LEADS,
                         500, 5000)
    assert mask[1, 500:750].all() and not mask[1, 750] and not mask[1, 499]
    assert mask[5, 500:750].all() and mask[0].sum() == 0
    assert mask[6].sum() == 40 and mask[6, 980:1020].all()  # +-40 ms at 500 Hz
    with pytest.raises(ValueError):
        boxes_to_mask([(("X9",), 0, 1, "")], STANDARD_LEADS, 500, 5000)


def test_mask_runs_round_trip(normal):
    x, fs, r = normal
    _, mask, _ = ab.inject_st_depression(x, fs, r, 9)
    assert np.array_equal(mask_from_runs(mask_to_runs(mask), mask.shape[1]), mask)


def _synthetic_cases():
    cases = []
    for i, kind in enumerate(ab.ABNORMALITY_KINDS):
        rec, _ = synthetic_ecg(seed=20 + i)
        r_peaks = np.asarray(rec.metadata["r_peaks"])
        cases.append(make_case(rec, kind, seed=i, case_id=f"c{i}", r_peaks=r_peaks))
    return cases


def test_evaluate_with_an_oracle_and_with_a_blind_map():
    cases = _synthetic_cases()
    oracle = {id(c.record): c.mask.astype(np.float32) for c in cases}
    res = evaluate(cases, lambda rec: oracle[id(rec)], threshold=0.5)
    assert res["disease"]["point_auroc"] == 1.0 and res["disease"]["dice"] == 1.0
    assert set(res["per_type"]) == set(ab.ABNORMALITY_KINDS) - {"noise_burst"}
    assert res["artifact"]["fraction_above_threshold"] == 1.0  # the oracle also lights up artefacts
    blind = evaluate(cases, lambda rec: np.zeros((12, rec.n_samples), np.float32))
    assert blind["disease"]["point_auroc"] == 0.5
    assert "in-sample" in blind["threshold_source"]
    def disease_oracle(rec):
        return oracle[id(rec)] * (rec.metadata["benchmark_kind"] != "noise_burst")

    disease_only = evaluate(cases, disease_oracle, threshold=0.5)
    assert disease_only["artifact"]["fraction_above_threshold"] == 0.0
    assert isinstance(cases[0], BenchmarkCase)


def test_build_benchmark_is_reproducible_and_loads_back(ptbxl_dir, tmp_path):
    kinds = ("pvc", "noise_burst")
    index_a = build_benchmark(ptbxl_dir, tmp_path / "a", seed=0, n_per_type=2, kinds=kinds, log=None)
    index_b = build_benchmark(ptbxl_dir, tmp_path / "b", seed=0, n_per_type=2, kinds=kinds, log=None)
    assert index_a.read_text() == index_b.read_text()
    cases = load_benchmark(tmp_path / "a")
    assert len(cases) == 4 and {c.kind for c in cases} == set(kinds)
    for case in cases:
        assert (tmp_path / "a" / f"{case.case_id}.dat").read_bytes() == \
            (tmp_path / "b" / f"{case.case_id}.dat").read_bytes()
        assert case.record.signal.shape == case.mask.shape and case.mask.any()
        assert case.source_ecg_id is not None and case.events
    assert {c.is_artifact for c in cases} == {True, False}
