"""The anomaly model: masks, batched restoration, calibration, bundles, training loop, analyze()."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

import ecgmodel
from ecgmodel.anomaly_scoring import (
    AnomalyDetector,
    Calibration,
    n_phase_bins,
    phase_bins,
    window_starts,
)
from ecgmodel.errors import AnalysisError, ModelLoadError
from ecgmodel.models.anomaly import AnomalyConfig, AnomalyNet, inference_masks, random_time_mask
from ecgmodel.models.bundle import load_bundle, record_in_manifest, save_bundle
from ecgmodel.resources import models_dir

BUNDLED = models_dir() / "ecglens-anomaly.pt"
needs_bundle = pytest.mark.skipif(not BUNDLED.is_file(), reason="no trained anomaly model is bundled yet")


def small_config() -> AnomalyConfig:
    return AnomalyConfig(width=16, n_heads=2, n_transformer_layers=1, epochs=1, batch_size=4, train_beats=2)


def test_inference_masks_restore_every_sample_exactly_once():
    config = AnomalyConfig()
    global_masks, beat_masks = inference_masks(config)
    assert global_masks.shape == (config.n_mask_sets, config.n_samples)
    assert torch.all(global_masks.sum(0) == 1)
    assert torch.all(beat_masks.sum(0) == 1)
    # each set hides about 1/K of the ECG, spread over the whole 10 s
    assert global_masks.sum(1).min() >= config.n_samples // config.n_mask_sets - config.patch
    assert global_masks[:, :1250].sum(1).min() > 0 and global_masks[:, 1250:].sum(1).min() > 0


def test_training_mask_hides_the_configured_fraction_in_all_leads():
    config = AnomalyConfig()
    mask = random_time_mask(config, 8, torch.Generator().manual_seed(0))
    assert mask.shape == (8, config.n_samples)
    assert np.allclose(mask.mean(1).numpy(), config.global_mask_ratio, atol=0.02)


def test_restoration_of_hidden_samples_does_not_depend_on_their_values():
    """What the network restores behind a mask cannot have seen the masked samples (no leak)."""
    torch.manual_seed(0)
    config = small_config()
    net = AnomalyNet(config).eval()
    global_masks, beat_masks = inference_masks(config)
    signal = torch.randn(1, 12, config.n_samples)
    beats = torch.randn(1, 3, 12, config.beat_len)
    beat_mask = beat_masks[:1].unsqueeze(1).expand(1, 3, -1)
    with torch.no_grad():
        before = net(signal, global_masks[:1], beats, beat_mask)
        changed = signal + 5.0 * global_masks[:1].unsqueeze(1)  # edit only the hidden samples
        changed_beats = beats + 5.0 * beat_mask.unsqueeze(2)
        after = net(changed, global_masks[:1], changed_beats, beat_mask)
    assert torch.allclose(before["global"], after["global"], atol=1e-5)
    assert torch.allclose(before["trend"], after["trend"], atol=1e-5)
    assert torch.allclose(before["beat"], after["beat"], atol=1e-5)
    with torch.no_grad():
        visible_edit = net(
            signal + 5.0 * (1 - global_masks[:1].unsqueeze(1)), global_masks[:1], beats, beat_mask
        )
    assert not torch.allclose(before["global"], visible_edit["global"], atol=1e-3)


def test_phase_bins_follow_the_r_peaks():
    config = AnomalyConfig()
    bins = phase_bins(np.array([500, 1000]), config.n_samples, config)
    assert bins[500] == config.beat_before // 10
    assert bins[0] == n_phase_bins(config) - 1  # before any beat window: the "between beats" bin
    assert bins.max() < n_phase_bins(config)


def test_window_starts_tile_long_records_and_end_at_the_end():
    assert window_starts(2500, 2500) == [0]
    assert window_starts(1000, 2500) == [0]
    starts = window_starts(9600, 2500)
    assert starts[0] == 0 and starts[-1] == 9600 - 2500 and len(starts) == 4


def _tiny_detector() -> AnomalyDetector:
    torch.manual_seed(0)
    config = small_config()
    bins = n_phase_bins(config)
    calibration = Calibration(
        log_mean=np.zeros((3, 12, bins), np.float32),
        log_std=np.ones((3, 12, bins), np.float32),
        reference_scores=np.linspace(-1, 1, 11).astype(np.float32),
    )
    return AnomalyDetector(net=AnomalyNet(config).eval(), calibration=calibration)


def test_long_and_short_records_give_maps_on_their_own_length():
    detector = _tiny_detector()
    rng = np.random.default_rng(1)
    for n in (900, 2500, 9600):
        z = rng.standard_normal((12, n)).astype(np.float32)
        peaks = np.arange(80, n - 200, 200)
        out = detector.score_record(z, peaks)
        assert out["map"].shape == (12, n)
        assert np.isfinite(out["map"]).all() and np.isfinite(out["score"])


def test_percentile_counts_reference_scores_below():
    detector = _tiny_detector()
    assert detector.calibration.percentile(-5) == 0
    assert detector.calibration.percentile(5) == 100
    assert detector.calibration.percentile(0.0) == pytest.approx(100 * 5 / 11)


def test_bundle_round_trip_and_corruption_is_a_clear_error(tmp_path):
    net = AnomalyNet(small_config())
    path = tmp_path / "model.pt"
    sha = save_bundle(
        path,
        name="t",
        version="1",
        kind="anomaly",
        config=small_config().to_dict(),
        state_dict=net.state_dict(),
        extras={"x": torch.zeros(2)},
    )
    record_in_manifest(path, sha, name="t")
    payload, loaded_sha = load_bundle(path, expected_kind="anomaly")
    assert loaded_sha == sha and payload["config"]["width"] == 16
    with pytest.raises(ModelLoadError, match="not the expected"):
        load_bundle(path, expected_kind="diagnosis")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="corrupted"):
        load_bundle(path)
    (tmp_path / "manifest.json").write_text(json.dumps({}))
    path.write_bytes(bytes(data[: len(data) // 3]))  # truncated download, no manifest entry to compare
    with pytest.raises(ModelLoadError, match="cannot be read"):
        load_bundle(path)
    with pytest.raises(ModelLoadError, match="missing"):
        load_bundle(tmp_path / "absent.pt")


def test_smoke_training_runs_and_resumes(tmp_path, ptbxl_dir):
    """A few steps on real normals: the loss is finite, a checkpoint is written and training resumes."""
    from ecgmodel.training.data import load_ptbxl_arrays
    from ecgmodel.training.train_anomaly import train_anomaly

    subset = tmp_path / "ptbxl"
    subset.mkdir()
    lines = (ptbxl_dir / "ptbxl_database.csv").read_text().splitlines()
    (subset / "ptbxl_database.csv").write_text("\n".join(lines[:9]) + "\n")
    (subset / "scp_statements.csv").write_text((ptbxl_dir / "scp_statements.csv").read_text())
    (subset / "records500").symlink_to(ptbxl_dir / "records500")
    arrays = load_ptbxl_arrays(subset, progress=False)
    assert arrays.signal.shape == (8, 12, 2500)
    config = small_config()
    config.epochs = 1
    train_anomaly(arrays, np.flatnonzero(arrays.is_normal), config, tmp_path / "run", progress=False)
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 1 and np.isfinite(metrics[0]["global"])
    config.epochs = 2
    train_anomaly(arrays, np.flatnonzero(arrays.is_normal), config, tmp_path / "run", progress=False)
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(m)["epoch"] for m in metrics] == [1, 2]  # resumed, not restarted


@needs_bundle
def test_analyze_real_record_gives_an_aligned_map_and_context(ptbxl_dir):
    record = ecgmodel.read(ptbxl_dir / "records500" / "00000" / "00001_hr.hea")
    result = ecgmodel.analyze(record)
    assert result.anomaly_map.shape == record.signal.shape
    assert 0 <= result.anomaly_percentile <= 100
    assert result.model is not None and len(result.model.weights_sha256) == 64
    assert 10 < result.predicted["age"] < 100
    assert 40 < result.measured["hr_bpm"] < 120
    record_100 = ecgmodel.read(ptbxl_dir / "records100" / "00000" / "00001_lr.hea")
    result_100 = ecgmodel.analyze(record_100)
    assert result_100.anomaly_map.shape == record_100.signal.shape


@needs_bundle
def test_abnormal_records_score_higher_than_normals_on_average(ptbxl_dir):
    """On test-fold records the model never saw, abnormal ECGs score above normal ones on average."""
    from ecgmodel.datasets import load_ptbxl_table, read_ptbxl_record

    rows = [r for r in load_ptbxl_table(ptbxl_dir) if r.strat_fold == 10 and r.superclasses][:40]
    normal, abnormal = [], []
    for row in rows:
        score = ecgmodel.analyze(read_ptbxl_record(ptbxl_dir, row), with_diagnosis=False).anomaly_score
        (normal if row.superclasses == {"NORM"} else abnormal).append(score)
    assert len(normal) >= 5 and len(abnormal) >= 5
    assert np.mean(abnormal) > np.mean(normal)


@needs_bundle
def test_flat_lead_is_excluded_and_too_short_record_is_refused(ptbxl_dir):
    record = ecgmodel.read(ptbxl_dir / "records500" / "00000" / "00002_hr.hea")
    record.signal[8] = 0.0  # V3 lead off
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ecgmodel.analyze(record)
    assert np.isnan(result.anomaly_map[8]).all()
    assert "V3" not in result.lead_scores
    record.signal = record.signal[:, :1000]  # 2 s
    with pytest.raises(AnalysisError, match="at least 2.5 s"):
        ecgmodel.analyze(record)


@needs_bundle
def test_bundled_score_combines_restoration_error_and_latent_distance(ptbxl_dir):
    """The shipped calibration carries the latent Gaussian, so the score is not the map alone."""
    from ecgmodel.analysis import load_anomaly_detector
    from ecgmodel.signal import detect_r_peaks, model_input

    detector = load_anomaly_detector()
    cal = detector.calibration
    assert cal.latent_mean is not None and cal.latent_precision is not None and cal.score_norm is not None
    assert cal.latent_precision.shape == (cal.latent_mean.size, cal.latent_mean.size)
    record = ecgmodel.read(ptbxl_dir / "records500" / "00000" / "00001_hr.hea")
    z, fs = model_input(record.signal, record.fs)
    result = detector.score_record(z, detect_r_peaks(z, fs))
    m_mu, m_sd, l_mu, l_sd = cal.score_norm
    expected = (result["map_score"] - m_mu) / m_sd + (result["latent_distance"] - l_mu) / l_sd
    assert result["score"] == pytest.approx(expected, rel=1e-5)
    assert abs(result["score"] - result["map_score"]) > 1e-3
    # the percentile reference was computed with the same combined score: normals centre near 0
    assert abs(float(np.median(cal.reference_scores))) < 1.0
