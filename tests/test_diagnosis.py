"""Diagnosis model: loss, encoder transfer, calibration helpers, bundle loading, predict, smoke training."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from ecgmodel.datasets import SUPERCLASSES, load_ptbxl_table, read_ptbxl_record
from ecgmodel.diagnosis import (
    DiagnosisConfig,
    DiagnosisNet,
    asymmetric_loss,
    load_diagnosis_model,
    load_encoder_weights,
)
from ecgmodel.errors import ModelLoadError
from ecgmodel.models.anomaly import AnomalyConfig, AnomalyNet
from ecgmodel.models.bundle import record_in_manifest, save_bundle
from ecgmodel.resources import models_dir, resources_dir
from ecgmodel.signal import detect_r_peaks, model_input
from ecgmodel.training.data import EcgArrays
from ecgmodel.training.evaluate_diagnosis import evaluate_predictions, frequency_bucket
from ecgmodel.training.train_diagnosis import fit_calibration, fit_thresholds, train_diagnosis

SHIPPED = models_dir() / "ecglens-diagnosis.pt"
TAXONOMY = resources_dir() / "taxonomy" / "scp_statements.json"
LABELS = ["SR", "AFIB", "PVC", "ABQRS", *SUPERCLASSES]
KINDS = ["rhythm", "rhythm", "form", "form", *["superclass"] * 5]


def tiny_config(**overrides) -> DiagnosisConfig:
    return DiagnosisConfig(labels=list(LABELS), kinds=list(KINDS), **overrides)


def write_bundle(path: Path, config: DiagnosisConfig, manifest: bool = True) -> Path:
    torch.manual_seed(0)
    net = DiagnosisNet(config)
    n = config.n_labels
    sha = save_bundle(
        path, name="ecglens-diagnosis", version="test", kind="diagnosis", config=config.to_dict(),
        state_dict=net.state_dict(),
        extras={"temperature": torch.full((n,), 1.5, dtype=torch.float64),
                "thresholds": torch.full((n,), 0.5, dtype=torch.float64),
                "bias": torch.full((n,), -1.0, dtype=torch.float64),
                "names": [f"name of {c}" for c in config.labels], "train_positives": [10] * n},
    )
    if manifest:
        record_in_manifest(path, sha, name="ecglens-diagnosis")
    return path


@pytest.fixture(scope="module")
def real_record(ptbxl_dir):
    """ecg_id 9 of PTB-XL (raw, 500 Hz) as the model input analysis.py builds: z (12, n) at 250 Hz."""
    row = next(r for r in load_ptbxl_table(ptbxl_dir) if r.ecg_id == 9)
    record = read_ptbxl_record(ptbxl_dir, row)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z, fs = model_input(np.nan_to_num(record.signal), record.fs)
        peaks = detect_r_peaks(z, fs)
    return z, peaks


def test_asymmetric_loss_reduces_to_bce_and_ignores_easy_negatives():
    logits = torch.randn(6, 5)
    targets = (torch.rand(6, 5) > 0.5).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / 6
    plain = asymmetric_loss(logits, targets, gamma_neg=0.0, gamma_pos=0.0, clip=0.0)
    assert torch.allclose(plain, bce, atol=1e-5)
    easy_negatives = torch.full((2, 3), -6.0)  # p = 0.0025 < clip: no loss at all
    assert asymmetric_loss(easy_negatives, torch.zeros(2, 3)).item() == pytest.approx(0.0, abs=1e-7)
    hard = asymmetric_loss(torch.full((1, 1), 2.0), torch.zeros(1, 1))
    assert hard.item() > 0.1


@pytest.mark.parametrize("use_beats", [False, True])
def test_anomaly_encoders_load_into_the_classifier(use_beats):
    anomaly = AnomalyNet(AnomalyConfig())
    config = DiagnosisConfig.from_anomaly(anomaly.config, labels=list(LABELS), kinds=list(KINDS),
                                          use_beats=use_beats)
    net = DiagnosisNet(config)
    keys = load_encoder_weights(net, anomaly.state_dict())
    own = net.state_dict()
    assert any(k.startswith("global_mixer.") for k in keys)
    assert any(k.startswith("trend_encoder.") for k in keys)
    assert any(k.startswith("beat_encoder.") for k in keys) == use_beats
    assert all(torch.equal(own[k], anomaly.state_dict()[k]) for k in keys)
    assert not any(k.startswith("head.") for k in keys)
    with pytest.raises(ModelLoadError):
        load_encoder_weights(net, {k: v for k, v in anomaly.state_dict().items() if "trend" not in k})


def test_frozen_encoder_trains_the_head_only():
    net = DiagnosisNet(tiny_config(freeze_encoder=True))
    trainable = {name for name, p in net.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith("head.") for name in trainable)


def test_temperature_and_thresholds_are_fitted_sensibly():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, (4000, 3))
    targets = (rng.random((4000, 3)) < 1 / (1 + np.exp(-true_logits))).astype(np.float32)
    temperature, bias = fit_calibration(3.0 * true_logits + 1.5, targets)
    assert temperature == pytest.approx(3.0, rel=0.15) and bias == pytest.approx(-0.5, abs=0.15)
    probs = np.array([[0.1, 0.9], [0.2, 0.8], [0.7, 0.3], [0.9, 0.2]])
    y = np.array([[0, 1], [0, 1], [1, 0], [1, 0]], dtype=np.float32)
    thresholds = fit_thresholds(probs, y, min_positives=2)
    assert thresholds[0] == pytest.approx(0.7) and thresholds[1] == pytest.approx(0.8)
    assert fit_thresholds(probs, y, min_positives=3).tolist() == [0.5, 0.5]  # too few positives


def test_evaluation_report_has_buckets_fairness_and_cis():
    rng = np.random.default_rng(1)
    n = 120
    targets = (rng.random((n, len(LABELS))) < 0.3).astype(np.float32)
    probs = np.clip(0.6 * targets + 0.5 * rng.random(targets.shape), 0, 1)
    counts = {"SR": 13000, "AFIB": 1200, "PVC": 900, "ABQRS": 150}
    report = evaluate_predictions(targets, probs, LABELS, KINDS, np.full(len(LABELS), 0.5), counts,
                                  rng.uniform(20, 90, n), rng.choice(["M", "F"], n), n_boot=50)
    assert report["superclass"]["n_labels"] == 5 and report["statements"]["n_labels"] == 4
    lo, hi = report["superclass"]["ci95"]
    assert lo <= report["superclass"]["auroc"] <= hi
    assert report["buckets"]["rare"]["n_labels"] == 1 and report["buckets"]["common"]["n_labels"] == 2
    assert np.isfinite(report["fairness"]["sex"]["superclass_gap"])
    assert frequency_bucket(1000) == "common" and frequency_bucket(999) == "uncommon"
    assert frequency_bucket(199) == "rare"


def check_ranked(diagnoses, allowed: set[str]) -> None:
    probs = [d.probability for d in diagnoses]
    assert probs == sorted(probs, reverse=True)
    assert all(0.0 <= p <= 1.0 for p in probs)
    assert {d.code for d in diagnoses} <= allowed
    assert all(d.kind in ("diagnostic", "form", "rhythm", "superclass") for d in diagnoses)


def test_predict_on_a_real_ptbxl_record_is_ranked(real_record, tmp_path):
    z, peaks = real_record
    model = load_diagnosis_model(write_bundle(tmp_path / "ecglens-diagnosis.pt", tiny_config(use_beats=True)))
    valid = np.ones(12, bool)
    valid[3] = False
    diagnoses = model.predict(z, peaks, valid)
    check_ranked(diagnoses, set(LABELS))
    assert len(diagnoses) == len(LABELS)
    assert model.info.weights_sha256 and model.info.version == "test"
    longer = model.predict(np.concatenate([z, z[:, :1200]], axis=1), peaks, None)  # 14.8 s: two windows
    check_ranked(longer, set(LABELS))
    short = model.predict(z[:, :1000], peaks[peaks < 1000], None)  # 4 s: zero-padded
    check_ranked(short, set(LABELS))


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped diagnosis model in resources/models yet")
def test_shipped_model_never_returns_untrained_statements(real_record):
    z, peaks = real_record
    model = load_diagnosis_model(SHIPPED)
    taxonomy = json.loads(TAXONOMY.read_text())
    trained = {e["code"] for e in taxonomy["statements"] + taxonomy["superclasses"] if e["trained"]}
    untrained = {e["code"] for e in taxonomy["statements"] if not e["trained"]}
    assert untrained, "the taxonomy should flag statements absent from training"
    diagnoses = model.predict(z, peaks, np.ones(12, bool))
    check_ranked(diagnoses, trained)
    assert not {d.code for d in diagnoses} & untrained
    assert set(model.config.labels) == {d.code for d in diagnoses}
    assert all(d.name and d.name != d.code for d in diagnoses)
    assert SHIPPED.stat().st_size < 5 * 1024 * 1024


def test_corrupted_or_missing_bundle_gives_model_load_error(tmp_path):
    bundle = write_bundle(tmp_path / "ecglens-diagnosis.pt", tiny_config())
    load_diagnosis_model(bundle)
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bundle.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="corrupted"):
        load_diagnosis_model(bundle)
    loose = tmp_path / "loose"
    loose.mkdir()
    truncated = loose / "ecglens-diagnosis.pt"  # no manifest here: the damage is found while reading
    truncated.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(ModelLoadError):
        load_diagnosis_model(truncated)
    with pytest.raises(ModelLoadError, match="missing"):
        load_diagnosis_model(tmp_path / "absent.pt")
    anomaly_kind = loose / "anomaly.pt"
    save_bundle(anomaly_kind, name="x", version="t", kind="anomaly", config={}, state_dict={}, extras={})
    with pytest.raises(ModelLoadError, match="anomaly"):
        load_diagnosis_model(anomaly_kind)


def test_incompatible_bundle_gives_model_load_error(tmp_path):
    bundle = write_bundle(tmp_path / "ecglens-diagnosis.pt", tiny_config())
    shutil.copy(bundle, tmp_path / "copy.pt")
    payload = torch.load(tmp_path / "copy.pt", weights_only=True)
    payload["extras"]["names"] = ["only one"]
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(ModelLoadError, match="do not match"):
        load_diagnosis_model(tmp_path / "bad.pt")


def random_arrays(n: int = 12) -> EcgArrays:
    rng = np.random.default_rng(0)
    peaks = [np.arange(100, 2400, 200, dtype=np.int64) for _ in range(n)]
    return EcgArrays(
        ecg_id=np.arange(n), source=np.array(["raw"] * n),
        signal=rng.standard_normal((n, 12, 2500)).astype(np.float32), r_peaks=peaks,
        attributes=np.zeros((n, 7), np.float32), fold=np.array([1] * (n - 4) + [9] * 4),
        is_normal=np.zeros(n, bool), superclass=rng.random((n, 5)) < 0.5,
        age=rng.uniform(20, 80, n), sex=np.array(["M", "F"] * (n // 2)),
    )


def test_smoke_training_two_steps_writes_a_resumable_run(tmp_path):
    torch.set_num_threads(1)
    arrays = random_arrays()
    targets = (np.random.default_rng(1).random((len(arrays), len(LABELS))) < 0.4).astype(np.float32)
    config = tiny_config(epochs=1, batch_size=4, use_beats=True, train_beats=2)
    train, val = np.arange(8), np.arange(8, 12)
    anomaly_checkpoint = tmp_path / "anomaly" / "checkpoint.pt"
    anomaly_checkpoint.parent.mkdir()
    torch.save({"model": AnomalyNet(AnomalyConfig()).state_dict()}, anomaly_checkpoint)
    net = train_diagnosis(arrays, targets, train, val, config, tmp_path / "run", init=anomaly_checkpoint,
                          progress=False, max_steps=2)
    run = tmp_path / "run"
    assert {"config.json", "metrics.jsonl", "checkpoint.pt", "best.pt"} <= {p.name for p in run.iterdir()}
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and "val_macro_auroc" in json.loads(lines[0])
    assert not net.training
    again = train_diagnosis(arrays, targets, train, val, config, run, progress=False, max_steps=2)
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # resumed: nothing left to train
    for k, v in net.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])


@pytest.mark.skipif(
    not (SHIPPED.is_file() and (models_dir() / "ecglens-anomaly.pt").is_file()),
    reason="needs both shipped bundles (anomaly + diagnosis) in resources/models",
)
def test_analyze_returns_ranked_diagnoses_with_the_shipped_models(ptbxl_dir):
    import ecgmodel

    record = ecgmodel.read(ptbxl_dir / "records500" / "00000" / "00009_hr.hea")
    analysis = ecgmodel.analyze(record, threads=1)
    check_ranked(analysis.diagnoses, set(load_diagnosis_model(SHIPPED).config.labels))
    assert [m.name for m in analysis.models] == ["ecglens-anomaly", "ecglens-diagnosis"]
    assert "diagnosis" in analysis.timings_ms
