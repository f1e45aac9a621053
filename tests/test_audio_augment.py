"""Tests of the offline audio-level augmentations (paper section 4.1)."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch

import speechbrain_relevance.augment.audio as aug
from speechbrain_relevance.errors import AudioFileError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Recipe modules, found by name as the recipes' own scripts find them.
RECIPE = os.path.join(ROOT, "recipes", "DCASE2020")
sys.path[:0] = [RECIPE]
import augment_dcase2020 as writer  # noqa: E402


def peak_frequency(y, sample_rate):
    """Frequency of the spectral peak, refined by parabolic interpolation."""
    n = y.shape[-1]
    spec = torch.fft.rfft(y * torch.hann_window(n, periodic=False)).abs()
    k = int(spec[1:-1].argmax()) + 1
    a, b, c = (float(v) for v in torch.log(spec[k - 1 : k + 2] + 1e-12))
    offset = 0.5 * (a - c) / (a - 2 * b + c)
    return (k + offset) * sample_rate / n


def envelope_period(y, sample_rate, min_lag, max_lag):
    """Period (s) of the on/off pattern, by biased autocorrelation.

    The envelope is thresholded because the phase vocoder (without phase
    locking) gives alternate bursts of a pure tone different amplitudes.
    """
    hop = sample_rate // 1000  # 1 ms envelope resolution
    env = y.abs().unfold(0, hop, hop).mean(dim=1)
    env = (env > 0.1 * env.max()).float()
    env = env - env.mean()
    n = env.shape[0]
    acf = torch.stack(
        [(env[: n - lag] * env[lag:]).sum() for lag in range(max_lag + 1)]
    )
    lag = int(acf[min_lag:].argmax()) + min_lag
    return lag * hop / sample_rate


def fir(y, taps):
    """Zero-phase FIR filter with odd, symmetric ``taps`` centred on t."""
    half = len(taps) // 2
    padded = torch.nn.functional.pad(y, (half, half))
    out = torch.zeros_like(y)
    for k, tap in enumerate(taps):
        out += tap * padded[k : k + y.shape[0]]
    return out


def fir_magnitude(taps, n_fft):
    """Magnitude response of an FIR filter on the rfft bins."""
    return torch.fft.rfft(torch.tensor(taps), n=n_fft).abs()


# Two different known "devices" relative to device a. Zero-phase, because
# spectrum correction only models magnitudes: then even the waveforms of a
# simulated and a real recording must agree.
DEVICE_TAPS = {"b": [0.25, 1.0, 0.25], "c": [-0.2, 0.6, -0.2]}


# --------------------------------------------------------------- mixing


def test_mix_gains_in_range_and_length():
    g = torch.Generator().manual_seed(0)
    y1, y2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    gains = torch.stack([aug.mix_same_class(y1, y2, g) for _ in range(500)])
    assert gains.min() >= 0.5 and gains.max() <= 1.0
    # The draws really spread over the range, and the two are independent.
    assert gains.min() < 0.52 and gains.max() > 0.98
    assert not torch.equal(gains[:, 0], gains[:, 1])
    # The second clip is tiled to the first one's length.
    mix = aug.mix_same_class(torch.zeros(7), torch.ones(3), gains=(1.0, 0.5))
    assert torch.equal(mix, torch.full((7,), 0.5))


# ---------------------------------------------------------- pitch shift


@pytest.mark.parametrize("n_steps", [3.0, -4.0, 1.37])
def test_pitch_shift_moves_sinusoid_by_ratio(n_steps):
    sr = 44100
    t = torch.arange(sr) / sr
    y = torch.sin(2 * math.pi * 440.0 * t)
    out = aug.pitch_shift(y, sr, n_steps)
    assert out.shape == y.shape
    measured = peak_frequency(out[4096:-4096], sr)
    expected = 440.0 * 2 ** (n_steps / 12)
    assert measured == pytest.approx(expected, rel=0.005)


def test_resample_friendly_steps_is_close_and_cheap():
    for sr in (8000, 16000, 22050, 44100, 48000):
        for steps in (-4.0, -2.71, 0.5, 3.99):
            quantised = aug.resample_friendly_steps(steps, sr)
            assert abs(quantised - steps) < 0.1
            # torchaudio resamples from int(sr * 2 ** (steps / 12)) Hz;
            # a large gcd with sr keeps its filter bank small.
            mid = int(sr * 2 ** (quantised / 12))
            assert sr // math.gcd(mid, sr) <= 500


# --------------------------------------------------------- time stretch


def tone_bursts(sr, seconds, period, on, freq):
    """A tone at ``freq`` switched on for ``on`` s every ``period`` s."""
    t = torch.arange(int(sr * seconds)) / sr
    gate = ((t % period) < on).float()
    return torch.sin(2 * math.pi * freq * t) * gate


@pytest.mark.parametrize("rate", [1.6, 0.625])
def test_time_stretch_changes_tempo_not_pitch_or_length(rate):
    sr = 16000
    y = tone_bursts(sr, 2.0, period=0.2, on=0.05, freq=1000.0)
    out = aug.time_stretch(y, rate, n_fft=512)
    assert out.shape == y.shape
    period = envelope_period(out, sr, min_lag=50, max_lag=400)
    assert period == pytest.approx(0.2 / rate, rel=0.05)
    assert peak_frequency(out, sr) == pytest.approx(1000.0, rel=0.01)
    # The original clip has the original period (sanity of the measure).
    assert envelope_period(y, sr, 50, 400) == pytest.approx(0.2, rel=0.02)


def test_time_stretch_target_length_and_batch():
    y = torch.randn(2, 4000, generator=torch.Generator().manual_seed(0))
    assert aug.time_stretch(y, 2.0, n_samples=5000, n_fft=256).shape == (
        2, 5000,
    )
    with pytest.raises(ValueError):
        aug.time_stretch(y, 0.0, n_fft=256)


# ---------------------------------------------------------------- noise


@pytest.mark.parametrize("kind", ["white", "pink"])
@pytest.mark.parametrize("snr_db", [0.0, 12.5, 30.0])
def test_add_noise_snr(kind, snr_db):
    g = torch.Generator().manual_seed(1)
    y = torch.sin(2 * math.pi * 440 * torch.arange(8000) / 8000)
    out = aug.add_noise(y, snr_db, g, kind=kind)
    noise = out - y
    snr = 10 * torch.log10(y.pow(2).sum() / noise.pow(2).sum())
    assert float(snr) == pytest.approx(snr_db, abs=1e-3)
    # Deterministic given the generator's seed.
    g2 = torch.Generator().manual_seed(1)
    assert torch.equal(out, aug.add_noise(y, snr_db, g2, kind=kind))


def test_pink_noise_has_falling_spectrum():
    g = torch.Generator().manual_seed(0)
    y = torch.ones(16000) * 1e-3
    power = torch.fft.rfft(aug.add_noise(y, 0.0, g, kind="pink") - y)
    power = power.abs().pow(2)
    low, high = power[10:100].mean(), power[4000:5000].mean()
    # 1/f: a decade lower in frequency has roughly ten times the power.
    assert low / high > 20
    with pytest.raises(ValueError):
        aug.add_noise(y, 0.0, g, kind="brown")


# ------------------------------------------------ spectrum correction
# (recipes/DCASE2020/augment_dcase2020.py, device responses)


def write(path, y, sr):
    sf.write(path, y.numpy(), sr, subtype="FLOAT")
    return path


def coloured_noise(n, seed):
    """Noise with a non-flat spectrum, so ratios cannot be trivially 1."""
    g = torch.Generator().manual_seed(seed)
    return 0.1 * fir(torch.randn(n, generator=g), [0.4, 1.0, 0.9, 0.4, 0.2])


def device_manifest(folder, sr, n_segments=3, seconds=1.0):
    """Parallel recordings on devices a, b, c plus an unpaired s1 clip."""
    entries = {}
    n = int(sr * seconds)
    for seg in range(n_segments):
        y = coloured_noise(n, seed=seg)
        for device in ("a", *DEVICE_TAPS):
            rec = y if device == "a" else fir(y, DEVICE_TAPS[device])
            stem = f"park-lyon-1-{seg}-{device}"
            entries[stem] = {
                "wav": write(os.path.join(folder, stem + ".wav"), rec, sr),
                "duration": seconds, "scene": "park", "device": device,
                "city": "lyon", "identifier": "lyon-1",
            }
    stem = "park-lyon-2-0-s1"  # no device-a partner: no response
    entries[stem] = {
        "wav": write(os.path.join(folder, stem + ".wav"),
                     coloured_noise(n, 99), sr),
        "duration": seconds, "scene": "park", "device": "s1",
        "city": "lyon", "identifier": "lyon-2",
    }
    return entries


def test_estimate_device_responses_recovers_each_filter(tmp_path):
    sr, n_fft = 16000, 512
    entries = device_manifest(str(tmp_path), sr)
    pairs = writer.find_device_pairs(entries)
    assert sorted(pairs) == ["b", "c"]
    assert all(len(p) == 3 for p in pairs.values())
    ratios = writer.estimate_device_responses(
        entries, n_fft=n_fft, sample_rate=sr
    )
    # Every device with pairs gets its own ratio (the reference kept one).
    assert sorted(ratios) == ["b", "c"]
    for device, taps in DEVICE_TAPS.items():
        truth = fir_magnitude(taps, n_fft)
        ratio = ratios[device]
        assert ratio.shape == (n_fft // 2 + 1,)
        rel = ((ratio - truth).abs() / truth)[2:-2]
        assert float(rel.median()) < 0.01 and float(rel.max()) < 0.05
    assert float((ratios["b"] - ratios["c"]).abs().mean()) > 0.3


def test_estimate_device_responses_max_pairs(tmp_path):
    entries = device_manifest(str(tmp_path), 8000, seconds=0.25)
    ratios = writer.estimate_device_responses(
        entries, n_fft=256, sample_rate=8000, max_pairs=1
    )
    truth = fir_magnitude(DEVICE_TAPS["b"], 256)
    rel = ((ratios["b"] - truth).abs() / truth)[2:-2]
    assert float(rel.median()) < 0.02 and float(rel.max()) < 0.1


def test_apply_device_response_matches_device_spectrum(tmp_path):
    sr, n_fft = 16000, 512
    ratios = writer.estimate_device_responses(
        device_manifest(str(tmp_path), sr), n_fft=n_fft, sample_rate=sr
    )
    y_a = coloured_noise(sr, seed=123)  # a clip not used for estimation
    for device, taps in DEVICE_TAPS.items():
        y_d = fir(y_a, taps)
        simulated = writer.apply_device_response(y_a, ratios[device], n_fft)
        assert simulated.shape == y_a.shape

        def log_spec(y):
            return torch.log(
                writer._stft_magnitude(y, n_fft, n_fft // 4).mean(dim=1) + 1e-6
            )[2:-2]

        error = (log_spec(simulated) - log_spec(y_d)).abs().mean()
        baseline = (log_spec(y_a) - log_spec(y_d)).abs().mean()
        assert float(error) < 0.02 < 0.2 < float(baseline)
        # Short FIRs are nearly exact as STFT-domain gains.
        rel = (simulated - y_d).norm() / y_d.norm()
        assert float(rel) < 0.05
    with pytest.raises(ValueError):
        writer.apply_device_response(y_a, torch.ones(10), n_fft)


# ------------------------------------------------------ manifest driver

SR = 8000
N_FFT = 256


def make_dataset(folder):
    """Tiny DCASE-like training manifest plus evaluation files beside it.

    The evaluation files lie in the same folder and include the device-b
    parallel recording of a training clip, as in DCASE, and are corrupt:
    reading any of them fails.
    """
    audio = os.path.join(folder, "audio")
    os.makedirs(audio)
    train = {}
    n = int(SR * 0.5)
    specs = [
        ("park", "lyon", 1, 0, ("a", "b", "c")),
        ("park", "lyon", 1, 1, ("a",)),
        ("park", "paris", 4, 0, ("a", "s1")),
        ("bus", "lyon", 2, 0, ("a", "b")),
        ("bus", "lyon", 2, 1, ("a",)),
    ]
    for i, (scene, city, loc, seg, devices) in enumerate(specs):
        y = coloured_noise(n, seed=10 + i)
        for device in devices:
            rec = y if device == "a" else fir(y, DEVICE_TAPS.get(device, [0.7]))
            stem = f"{scene}-{city}-{loc}-{seg}-{device}"
            train[stem] = {
                "wav": write(os.path.join(audio, stem + ".wav"), rec, SR),
                "duration": 0.5, "scene": scene, "device": device,
                "city": city, "identifier": f"{city}-{loc}",
            }
    outside = []
    for stem in ("park-lyon-1-1-b", "bus-lyon-9-0-a", "park-lyon-9-0-c"):
        path = os.path.join(audio, stem + ".wav")
        with open(path, "wb") as f:
            f.write(b"not a wav file")
        outside.append(path)
    manifest = os.path.join(folder, "train.json")
    with open(manifest, "w") as f:
        json.dump(train, f)
    return manifest, train, outside


def run(manifest, out, **kwargs):
    options = dict(sample_rate=SR, n_fft=N_FFT, seed=7)
    options.update(kwargs)
    return writer.augment_manifest(manifest, out, **options)


def load_json(path):
    with open(path) as f:
        return json.load(f)


#: Every function through which the writer reads audio (the device
#: responses' estimation included).
READERS = (
    (writer, "load_audio"),
    (writer, "audio_info"),
)


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(str(tmp_path / "data"))


def test_augment_manifest_schema_and_files(dataset, tmp_path):
    manifest, train, _ = dataset
    out = run(manifest, str(tmp_path / "aug"))
    assert out == str(tmp_path / "aug" / "augmented.json")
    data = load_json(out)
    n_a = sum(e["device"] == "a" for e in train.values())
    per_method = {m: 0 for m in writer.METHODS}
    for key, entry in data.items():
        method = entry["augmentation"]
        per_method[method] += 1
        source = train[entry["source"][0]]
        assert key == f"{entry['source'][0]}_{method}0"
        for field in ("scene", "city", "identifier"):
            assert entry[field] == source[field]
        assert all(s in train for s in entry["source"])
        info = sf.info(entry["wav"])
        assert (info.samplerate, info.channels) == (SR, 1)
        assert info.frames == int(source["duration"] * SR)
        assert entry["duration"] == pytest.approx(source["duration"])
        if method == "mix":
            partner = train[entry["source"][1]]
            assert partner["scene"] == source["scene"]
            assert entry["source"][1] != entry["source"][0]
            assert all(0.5 <= g <= 1.0 for g in entry["params"]["gains"])
        else:
            assert len(entry["source"]) == 1
        if method == "spectrum":
            assert source["device"] == "a"
            assert entry["device"] in ("b", "c", "s1")
        else:
            assert entry["device"] == source["device"]
        if method == "pitch":
            assert -4 <= entry["params"]["n_steps"] <= 4
        if method == "stretch":
            assert 0.5 <= entry["params"]["rate"] <= 2
        if method == "noise":
            assert 10 <= entry["params"]["snr_db"] <= 30
    assert per_method == {
        "mix": len(train), "pitch": len(train), "stretch": len(train),
        "noise": len(train), "spectrum": n_a,
    }
    # Responses are estimated for every paired device of the training set.
    responses = torch.load(
        os.path.join(os.path.dirname(next(iter(data.values()))["wav"]),
                     "device_responses.pt")
    )
    assert sorted(responses) == ["b", "c", "s1"]


def test_spectrum_output_resembles_real_device(dataset, tmp_path):
    manifest, train, _ = dataset
    out = run(manifest, str(tmp_path / "aug"), methods=("spectrum",),
              copies=4, subtype="FLOAT")
    checked = 0
    for entry in load_json(out).values():
        group = entry["source"][0][: -len("-a")]
        real = train.get(f"{group}-{entry['device']}")
        if real is None or entry["device"] not in DEVICE_TAPS:
            continue
        y_sim = torch.from_numpy(sf.read(entry["wav"], dtype="float32")[0])
        y_real = torch.from_numpy(sf.read(real["wav"], dtype="float32")[0])
        rel = (y_sim - y_real).norm() / y_real.norm()
        assert float(rel) < 0.1
        checked += 1
    assert checked > 0


def test_augment_manifest_is_deterministic(dataset, tmp_path):
    manifest, _, _ = dataset
    first = load_json(run(manifest, str(tmp_path / "one")))
    second = load_json(run(manifest, str(tmp_path / "two")))
    other = load_json(run(manifest, str(tmp_path / "three"), seed=8))
    assert sorted(first) == sorted(second) == sorted(other)
    n_diff = 0
    for key in first:
        a, b = first[key], second[key]
        assert a["params"] == b["params"] and a["source"] == b["source"]
        wav_a, wav_b, wav_o = (
            sf.read(m[key]["wav"])[0] for m in (first, second, other)
        )
        assert np.array_equal(wav_a, wav_b)
        # Spectrum correction has no randomness beyond the drawn device.
        if a["augmentation"] != "spectrum":
            n_diff += not np.array_equal(wav_a, wav_o)
    assert n_diff == sum(
        e["augmentation"] != "spectrum" for e in first.values()
    )


def test_augment_manifest_copies_per_method(dataset, tmp_path):
    manifest, train, _ = dataset
    data = load_json(run(manifest, str(tmp_path / "aug"),
                         methods=("pitch", "noise"),
                         copies={"pitch": 2}))
    assert len(data) == 2 * len(train)
    assert {e["augmentation"] for e in data.values()} == {"pitch"}
    # Copies are distinct draws.
    key = next(iter(train))
    assert (data[f"{key}_pitch0"]["params"]
            != data[f"{key}_pitch1"]["params"])
    with pytest.raises(ValueError):
        run(manifest, str(tmp_path / "bad"), methods=("pitch", "warp"))
    with pytest.raises(ValueError):
        run(manifest, str(tmp_path / "bad"), methods=("pitch",),
            copies={"noise": 1})


def test_augment_manifest_reuses_and_resumes(dataset, tmp_path, monkeypatch):
    manifest, _, _ = dataset
    out_folder = str(tmp_path / "aug")
    out = run(manifest, out_folder, methods=("pitch", "mix"))
    data = load_json(out)
    mtimes = {k: os.stat(e["wav"]).st_mtime_ns for k, e in data.items()}

    def no_reading(*args, **kwargs):
        raise AssertionError("finished output was not reused")

    with monkeypatch.context() as m:
        for module, name in READERS:
            m.setattr(module, name, no_reading)
        assert run(manifest, out_folder, methods=("pitch", "mix")) == out
    assert {k: os.stat(e["wav"]).st_mtime_ns for k, e in data.items()} == (
        mtimes
    )
    # An interrupted run (manifest and one wav missing) resumes to the
    # same result.
    victim = next(iter(data.values()))["wav"]
    reference = sf.read(victim)[0]
    os.remove(victim)
    os.remove(out)
    assert load_json(run(manifest, out_folder, methods=("pitch", "mix"))) == (
        data
    )
    assert np.array_equal(sf.read(victim)[0], reference)
    # Other options write to another audio folder, not over these files.
    new = load_json(run(manifest, out_folder, methods=("pitch",), seed=3))
    assert all(
        os.path.dirname(e["wav"]) != os.path.dirname(victim)
        for e in new.values()
    )
    assert os.path.isfile(victim)


def test_augment_manifest_reads_only_its_manifest(
    dataset, tmp_path, monkeypatch
):
    manifest, train, outside = dataset
    allowed = {e["wav"] for e in train.values()}
    read = []
    for module, name in READERS:
        original = getattr(module, name)

        def spy(path, *args, _original=original, **kwargs):
            read.append(os.path.abspath(path))
            return _original(path, *args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    # The evaluation files are corrupt, so reading one would also fail.
    run(manifest, str(tmp_path / "aug"))
    assert read and set(read) <= allowed
    assert not set(read) & set(outside)


def test_augment_manifest_names_missing_source(dataset, tmp_path):
    manifest, train, _ = dataset
    victim_id = "bus-lyon-2-1-a"
    os.remove(train[victim_id]["wav"])
    out_folder = tmp_path / "aug"
    with pytest.raises(AudioFileError) as info:
        run(manifest, str(out_folder))
    assert train[victim_id]["wav"] in str(info.value)
    assert victim_id in str(info.value)
    # It fails before writing anything.
    assert not (out_folder / "augmented.json").exists()


def test_spectrum_without_pairs_is_an_error(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    stem = "park-lyon-1-0-a"
    path = write(str(folder / f"{stem}.wav"), coloured_noise(4000, 0), SR)
    manifest = str(folder / "train.json")
    with open(manifest, "w") as f:
        json.dump({stem: {"wav": path, "duration": 0.5, "scene": "park",
                          "device": "a", "city": "lyon",
                          "identifier": "lyon-1"}}, f)
    with pytest.raises(ValueError, match="pairs"):
        run(manifest, str(tmp_path / "aug"), methods=("spectrum",))
    # Mixing with no same-scene partner skips the clip.
    data = load_json(run(manifest, str(tmp_path / "aug2"),
                         methods=("mix", "noise")))
    assert [e["augmentation"] for e in data.values()] == ["noise"]


def test_merge_manifests(dataset, tmp_path):
    manifest, train, _ = dataset
    out = run(manifest, str(tmp_path / "aug"), methods=("noise",))
    merged_path = str(tmp_path / "merged" / "all.json")
    merged = writer.merge_manifests([manifest, out], merged_path)
    assert len(merged) == 2 * len(train)
    assert load_json(merged_path) == merged
    clash = str(tmp_path / "clash.json")
    key = next(iter(train))
    with open(clash, "w") as f:
        json.dump({key: {"wav": "elsewhere.wav"}}, f)
    with pytest.raises(ValueError, match=key):
        writer.merge_manifests([manifest, clash], merged_path)


def test_cli(dataset, tmp_path):
    manifest, train, _ = dataset
    merged = str(tmp_path / "merged.json")
    out = writer.main([
        "--train-manifest", manifest, "--out-folder", str(tmp_path / "aug"),
        "--methods", "pitch", "stretch", "--copies", "1",
        "--method-copies", "stretch=2", "--seed", "5",
        "--sample-rate", str(SR), "--n-fft", str(N_FFT),
        "--merged-manifest", merged,
    ])
    data = load_json(out)
    assert len(data) == 3 * len(train)
    assert len(load_json(merged)) == 4 * len(train)
    with pytest.raises(SystemExit):
        writer.main(["--train-manifest", manifest, "--out-folder", "x",
                  "--methods", "pitch", "--method-copies", "mix=1"])


# ------------------------------------------- worker processes and kill -9


def wav_bytes(manifest_path):
    """``{id: bytes of its wav}`` of an augmented manifest."""
    data = load_json(manifest_path)
    out = {}
    for key, entry in data.items():
        with open(entry["wav"], "rb") as f:
            out[key] = f.read()
    return out


def without_paths(manifest_path):
    """Manifest entries without their (folder-dependent) wav paths."""
    return {
        k: {f: v for f, v in e.items() if f != "wav"}
        for k, e in load_json(manifest_path).items()
    }


def test_two_workers_write_the_same_files_as_one(dataset, tmp_path):
    manifest, train, _ = dataset
    one = run(manifest, str(tmp_path / "one"), copies=2, num_workers=1)
    two = run(manifest, str(tmp_path / "two"), copies=2, num_workers=2)
    assert without_paths(one) == without_paths(two)
    bytes_one, bytes_two = wav_bytes(one), wav_bytes(two)
    assert len(bytes_one) == 2 * (4 * len(train) + 5)  # 5 device-a clips
    assert bytes_one == bytes_two
    # Not a trivial agreement: copies of one clip differ.
    assert bytes_one["park-lyon-1-0-a_noise0"] != (
        bytes_one["park-lyon-1-0-a_noise1"]
    )
    with pytest.raises(ValueError, match="num_workers"):
        run(manifest, str(tmp_path / "bad"), num_workers=0)


#: Run in a subprocess: augment serially and SIGKILL the process while it
#: writes its fifth wav, after half the samples are in the temporary file.
KILL_SCRIPT = """
import os, signal, sys
import soundfile as sf

manifest, out, sr, n_fft, recipe = sys.argv[1], sys.argv[2], \\
    int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
sys.path.insert(0, recipe)
import augment_dcase2020 as writer

written = []
original = writer._write_wav


def dying_write(path, wav, sample_rate, subtype):
    if len(written) == 4:
        with open(path + ".tmp", "wb") as f:
            f.write(b"RIFF" + bytes(100))
        os.kill(os.getpid(), signal.SIGKILL)
    written.append(path)
    original(path, wav, sample_rate, subtype)


writer._write_wav = dying_write
writer.augment_manifest(manifest, out, sample_rate=sr, n_fft=n_fft, seed=7,
                        copies=2)
"""


def test_resume_after_kill_gives_identical_output(dataset, tmp_path):
    manifest, _, _ = dataset
    reference = run(manifest, str(tmp_path / "ref"), copies=2)
    out = tmp_path / "killed"
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, manifest, str(out), str(SR),
         str(N_FFT), RECIPE],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not (out / "augmented.json").exists()
    (audio_dir,) = out.glob("audio_*")
    finished = sorted(audio_dir.glob("*.wav"))
    assert len(finished) == 4
    assert len(list(audio_dir.glob("*.wav.tmp"))) == 1
    stamps = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in finished}
    # Resume with two workers: finished clips are kept, the torn temporary
    # file is not taken for a clip, the result equals an uninterrupted run.
    resumed = run(manifest, str(out), copies=2, num_workers=2)
    assert without_paths(resumed) == without_paths(reference)
    assert wav_bytes(resumed) == wav_bytes(reference)
    assert not list(audio_dir.glob("*.tmp"))
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in finished} == (
        stamps
    )


def _children(pid):
    """Pids of a process's children (Linux)."""
    path = f"/proc/{pid}/task/{pid}/children"
    with open(path) as f:
        return [int(c) for c in f.read().split()]


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(
    not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"),
    reason="needs Linux /proc children lists",
)
def test_cli_kill_9_with_workers_then_resume(dataset, tmp_path):
    manifest, _, _ = dataset
    options = ["--sample_rate", str(SR), "--n_fft", str(N_FFT), "--seed",
               "7", "--copies", "6", "--methods", "pitch", "stretch",
               "noise"]
    cli = os.path.join(RECIPE, "augment_dcase2020.py")
    reference = str(tmp_path / "ref")
    subprocess.run(
        [sys.executable, cli, "--train_manifest", manifest, "--out_folder",
         reference, *options],
        check=True, capture_output=True, timeout=300,
    )
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, cli, "--train_manifest", manifest, "--out_folder",
         str(out), "--num_workers", "2", *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not list(out.glob("audio_*/*.wav")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.002)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(workers) == 2
    assert not (out / "augmented.json").exists()
    # Orphaned workers notice their parent is gone and exit.
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)
    done = len(list(out.glob("audio_*/*.wav")))
    assert 0 < done < 3 * 6 * 11
    subprocess.run(
        [sys.executable, cli, "--train_manifest", manifest, "--out_folder",
         str(out), "--num_workers", "2", "--no_progress", *options],
        check=True, capture_output=True, timeout=300,
    )
    ref_manifest = os.path.join(reference, "augmented.json")
    out_manifest = str(out / "augmented.json")
    assert without_paths(out_manifest) == without_paths(ref_manifest)
    assert wav_bytes(out_manifest) == wav_bytes(ref_manifest)
