"""Synthetic DCASE2020 Task 1A generator and the DCASE2020 data preparation."""

import csv
import importlib.util
import json
import logging
import os
import re
import shutil
import sys

import numpy as np
import pytest
import soundfile as sf

# Recipe modules, found by name as the recipes' own scripts find them.
_RECIPES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes"
)
sys.path[:0] = [
    os.path.join(_RECIPES, "DCASE2020"),
]
import synthetic_dcase2020 as synth  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREP_PATH = os.path.join(REPO, "recipes", "DCASE2020", "prepare_dcase2020.py")
SR = 44100
DURATION = 1.0
STEM_RE = re.compile(
    r"^audio/(?P<scene>[a-z_]+)-(?P<city>[a-z]+)-(?P<loc>\d+)-(?P<seg>\d+)-"
    r"(?P<dev>a|b|c|s[1-6])\.wav$"
)
MANIFEST_KEYS = {"wav", "duration", "scene", "device", "city", "identifier"}


@pytest.fixture(scope="module")
def prep():
    """The recipe's prep module (recipes are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(
        "prepare_dcase2020", PREP_PATH
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A small set with every scene and device, shared by read-only tests."""
    root = tmp_path_factory.mktemp("dcase")
    return synth.generate_synthetic_dcase(
        str(root), n_cities=2, n_locations_per_city=3,
        n_segments_per_location=2, duration=DURATION, parallel_fraction=0.2,
        seed=7,
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A very small set to copy and damage."""
    root = tmp_path_factory.mktemp("tiny")
    return synth.generate_synthetic_dcase(
        str(root), n_cities=1, n_locations_per_city=3,
        n_segments_per_location=1, duration=0.2,
        scenes=("bus", "park", "tram"), devices=("a", "b", "s4"), seed=1,
    )


@pytest.fixture
def copy(tiny, tmp_path):
    """A private copy of the tiny set (the dataset folder path)."""
    dst = os.path.join(str(tmp_path), "data", synth.DATASET_DIRNAME)
    shutil.copytree(tiny, dst)
    return dst


def read_tsv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def first_line(path):
    with open(path, encoding="utf-8") as f:
        return f.readline()


def load(folder, name):
    data, sr = sf.read(os.path.join(folder, name), dtype="float64")
    assert sr == SR
    return data


def log_bands(x, n_bands=30, fmin=120.0, fmax=SR / 2):
    """Mean log power in log-spaced bands (a crude, gain-free spectrum)."""
    n = 2048
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::1024]
    power = (np.abs(np.fft.rfft(frames * np.hanning(n))) ** 2).mean(0)
    freqs = np.fft.rfftfreq(n, 1.0 / SR)
    edges = np.geomspace(fmin, fmax, n_bands + 1)
    bands = np.array([
        power[(freqs >= lo) & (freqs < hi)].mean()
        for lo, hi in zip(edges[:-1], edges[1:])
    ])
    return np.log(bands + 1e-12)


# ---------------------------------------------------------------- generator


def test_layout_and_headers(dataset):
    assert os.path.basename(dataset) == synth.DATASET_DIRNAME
    setup = os.path.join(dataset, "evaluation_setup")
    assert first_line(os.path.join(dataset, "meta.csv")) == (
        "filename\tscene_label\tidentifier\tsource_label\n"
    )
    for name in ("fold1_train.csv", "fold1_evaluate.csv"):
        assert first_line(os.path.join(setup, name)) == (
            "filename\tscene_label\n"
        )
    meta = read_tsv(os.path.join(dataset, "meta.csv"))
    for row in meta:
        m = STEM_RE.match(row["filename"])
        assert m, row["filename"]
        assert row["scene_label"] == m["scene"]
        assert row["identifier"] == f"{m['city']}-{m['loc']}"
        assert row["source_label"] == m["dev"]
    on_disk = {"audio/" + f for f in os.listdir(os.path.join(dataset,
                                                             "audio"))}
    assert on_disk == {r["filename"] for r in meta}
    train = read_tsv(os.path.join(setup, "fold1_train.csv"))
    evaluate = read_tsv(os.path.join(setup, "fold1_evaluate.csv"))
    train_names = {r["filename"] for r in train}
    eval_names = {r["filename"] for r in evaluate}
    assert not train_names & eval_names
    assert train_names | eval_names == on_disk
    labels = {r["filename"]: r["scene_label"] for r in meta}
    assert all(labels[r["filename"]] == r["scene_label"]
               for r in train + evaluate)
    assert {r["scene_label"] for r in train} == set(synth.SCENES)
    assert {r["scene_label"] for r in evaluate} == set(synth.SCENES)
    assert {r["filename"].split("-")[1] for r in meta} == set(
        synth.CITIES[:2]
    )
    info = sf.info(os.path.join(dataset, meta[0]["filename"]))
    assert (info.samplerate, info.channels, info.subtype) == (
        SR, 1, "PCM_24"
    )
    assert info.frames == int(DURATION * SR)


def test_splits_by_location_and_devices(dataset):
    setup = os.path.join(dataset, "evaluation_setup")
    train = read_tsv(os.path.join(setup, "fold1_train.csv"))
    evaluate = read_tsv(os.path.join(setup, "fold1_evaluate.csv"))

    def ident(name):
        m = STEM_RE.match(name)
        return f"{m['city']}-{m['loc']}"

    assert not ({ident(r["filename"]) for r in train}
                & {ident(r["filename"]) for r in evaluate})
    train_devices = {STEM_RE.match(r["filename"])["dev"] for r in train}
    eval_devices = {STEM_RE.match(r["filename"])["dev"] for r in evaluate}
    assert train_devices == {"a", "b", "c", "s1", "s2", "s3"}
    assert eval_devices == set(synth.DEVICES)
    # Every non-reference clip has its device-a twin.
    names = {r["filename"] for r in train + evaluate}
    for name in names:
        stem, dev = name[:-4].rsplit("-", 1)
        assert f"{stem}-a.wav" in names


def test_same_seed_identical_other_seed_different(tmp_path):
    kwargs = dict(n_cities=1, n_locations_per_city=2,
                  n_segments_per_location=1, duration=0.25,
                  scenes=("bus", "park"), devices=("a", "c", "s5"))
    one = synth.generate_synthetic_dcase(str(tmp_path / "1"), seed=3,
                                         **kwargs)
    two = synth.generate_synthetic_dcase(str(tmp_path / "2"), seed=3,
                                         **kwargs)
    other = synth.generate_synthetic_dcase(str(tmp_path / "3"), seed=4,
                                           **kwargs)
    files = []
    for dirpath, _, names in os.walk(one):
        files += [os.path.relpath(os.path.join(dirpath, n), one)
                  for n in names]
    assert len(files) > 5
    for rel in files:
        with open(os.path.join(one, rel), "rb") as f:
            a = f.read()
        with open(os.path.join(two, rel), "rb") as f:
            assert f.read() == a, rel
    wav = "audio/bus-amsterdam-2-0-a.wav"
    assert not np.array_equal(load(one, wav), load(other, wav))


def test_generator_reuses_and_refuses_other_options(tmp_path):
    kwargs = dict(n_cities=1, n_locations_per_city=1,
                  n_segments_per_location=1, duration=0.1,
                  scenes=("tram",), devices=("a",))
    path = synth.generate_synthetic_dcase(str(tmp_path), **kwargs)
    meta = os.path.join(path, "meta.csv")
    os.utime(meta, ns=(10**9, 10**9))
    assert synth.generate_synthetic_dcase(str(tmp_path), **kwargs) == path
    assert os.stat(meta).st_mtime_ns == 10**9
    with pytest.raises(FileExistsError):
        synth.generate_synthetic_dcase(str(tmp_path), seed=5, **kwargs)
    synth.generate_synthetic_dcase(str(tmp_path), seed=5, overwrite=True,
                                   **kwargs)
    assert os.stat(meta).st_mtime_ns != 10**9


def test_cli(tmp_path):
    path = synth.main([
        "--root", str(tmp_path), "--n_cities", "1", "--duration", "0.1",
        "--n_segments_per_location", "1", "--scenes", "metro",
        "--devices", "a,b", "--seed", "2",
    ])
    assert path == os.path.join(str(tmp_path), synth.DATASET_DIRNAME)
    assert len(read_tsv(os.path.join(path, "meta.csv"))) >= 2


def test_parallel_recordings_time_aligned(dataset):
    meta = read_tsv(os.path.join(dataset, "meta.csv"))
    names = {r["filename"] for r in meta}
    parallel = sorted(n for n in names if n.endswith("-s1.wav"))
    assert parallel
    n_checked = 0
    for name in parallel:
        ref = load(dataset, name[: -len("s1.wav")] + "a.wav")
        for dev in ("b", "c", "s1", "s2", "s3"):
            other_name = name[: -len("s1.wav")] + f"{dev}.wav"
            if other_name not in names:
                continue
            other = load(dataset, other_name)
            assert other.shape == ref.shape
            # Full cross-correlation: its peak sits at lag 0 exactly.
            n = 2 * len(ref)
            xc = np.fft.irfft(np.fft.rfft(other, n)
                              * np.conj(np.fft.rfft(ref, n)), n)
            lag = int(np.argmax(np.abs(xc)))
            assert lag == 0, (other_name, lag)
            rho = xc[0] / np.sqrt((ref**2).sum() * (other**2).sum())
            assert rho > 0.3, (other_name, rho)
            n_checked += 1
    assert n_checked >= 5
    # Different segments of the same location share no signal.
    a0 = load(dataset, parallel[0][: -len("s1.wav")] + "a.wav")
    m = STEM_RE.match(parallel[0])
    seg = 1 - int(m["seg"])
    a1 = load(dataset, f"audio/{m['scene']}-{m['city']}-{m['loc']}-{seg}"
                       "-a.wav")
    rho = (a0 * a1).sum() / np.sqrt((a0**2).sum() * (a1**2).sum())
    assert abs(rho) < 0.2


def test_devices_differ_as_designed(dataset):
    meta = read_tsv(os.path.join(dataset, "meta.csv"))
    names = {r["filename"] for r in meta}
    centres = np.geomspace(120.0, SR / 2, 31)
    centres = np.sqrt(centres[:-1] * centres[1:])
    band = (centres > 300) & (centres < 7000)
    measured = {}
    for dev in ("b", "c", "s1", "s4", "s6"):
        diffs = []
        for name in sorted(n for n in names if n.endswith(f"-{dev}.wav")):
            ref = load(dataset, name[: -len(f"{dev}.wav")] + "a.wav")
            diffs.append(log_bands(load(dataset, name)) - log_bands(ref))
        measured[dev] = np.mean(diffs, axis=0) * 10 / np.log(10)  # dB
        truth = 20 * np.log10(synth.device_response(dev, centres)
                              / synth.device_response("a", centres))
        # The measured device/reference ratio follows the designed one.
        err = np.abs(measured[dev][band] - truth[band])
        assert np.median(err) < 1.5, (dev, err)
        assert np.corrcoef(measured[dev][band], truth[band])[0, 1] > 0.8
    devs = sorted(measured)
    for i, d1 in enumerate(devs):
        for d2 in devs[i + 1:]:
            gap = np.abs(measured[d1] - measured[d2])[band].mean()
            assert gap > 1.0, (d1, d2, gap)


def test_scenes_learnable_by_nearest_centroid(dataset):
    setup = os.path.join(dataset, "evaluation_setup")

    def features(rows):
        rows = [r for r in rows if r["filename"].endswith("-a.wav")]
        x = np.array([log_bands(load(dataset, r["filename"])) for r in rows])
        # Mean-removed log spectrum: ignores overall level.
        return x - x.mean(1, keepdims=True), [r["scene_label"] for r in rows]

    x_tr, y_tr = features(read_tsv(os.path.join(setup, "fold1_train.csv")))
    x_ev, y_ev = features(read_tsv(os.path.join(setup,
                                                "fold1_evaluate.csv")))
    centroids = np.stack([
        x_tr[[y == s for y in y_tr]].mean(0) for s in synth.SCENES
    ])
    dist = ((x_ev[:, None] - centroids[None]) ** 2).sum(-1)
    pred = [synth.SCENES[i] for i in dist.argmin(1)]
    acc = np.mean([p == y for p, y in zip(pred, y_ev)])
    assert len(y_ev) >= 30
    assert acc >= 0.3, acc  # chance is 0.1; about 0.4-0.5 is typical


def test_hf_twins_differ_only_above_8khz(tmp_path):
    path = synth.generate_synthetic_dcase(
        str(tmp_path), n_cities=2, n_locations_per_city=2,
        n_segments_per_location=1, duration=0.5, devices=("a",),
        scenes=("public_square", "street_pedestrian"), evaluate_fraction=0,
    )
    spectra = {"public_square": [], "street_pedestrian": []}
    for row in read_tsv(os.path.join(path, "meta.csv")):
        spectra[row["scene_label"]].append(
            log_bands(load(path, row["filename"]), fmin=500.0)
        )
    centres = np.geomspace(500.0, SR / 2, 31)
    centres = np.sqrt(centres[:-1] * centres[1:])
    gap = (np.mean(spectra["street_pedestrian"], 0)
           - np.mean(spectra["public_square"], 0)) * 10 / np.log(10)
    low, high = gap[centres < 6000], gap[(centres > 9500)
                                         & (centres < 13000)]
    # Location-level gains blur the low bands a little, but the high
    # bands stand out by far more.
    assert high.mean() - low.mean() > 8.0, gap


# -------------------------------------------------------------- preparation


def load_manifests(paths):
    out = {}
    for split, path in paths.items():
        with open(path, encoding="utf-8") as f:
            out[split] = json.load(f)
    return out


def test_prepare_writes_manifests(prep, dataset, tmp_path):
    paths = prep.prepare_dcase2020(dataset, str(tmp_path / "save"))
    assert sorted(paths) == ["test", "train", "valid"]
    man = load_manifests(paths)
    setup = os.path.join(dataset, "evaluation_setup")
    train_rows = read_tsv(os.path.join(setup, "fold1_train.csv"))
    eval_rows = read_tsv(os.path.join(setup, "fold1_evaluate.csv"))
    assert len(man["train"]) + len(man["valid"]) == len(train_rows)
    assert len(man["test"]) == len(eval_rows)
    for entries in man.values():
        for key, entry in entries.items():
            assert set(entry) == MANIFEST_KEYS
            assert os.path.isabs(entry["wav"]) and os.path.isfile(
                entry["wav"])
            assert os.path.basename(entry["wav"]) == key + ".wav"
            m = STEM_RE.match("audio/" + key + ".wav")
            assert entry["scene"] == m["scene"]
            assert entry["device"] == m["dev"]
            assert entry["city"] == m["city"]
            assert entry["identifier"] == f"{m['city']}-{m['loc']}"
            assert entry["duration"] == pytest.approx(DURATION)
    train_ids = {e["identifier"] for e in man["train"].values()}
    valid_ids = {e["identifier"] for e in man["valid"].values()}
    assert valid_ids and not train_ids & valid_ids
    # Every scene has four training locations here: all are covered.
    assert {e["scene"] for e in man["valid"].values()} == set(synth.SCENES)
    assert {e["scene"] for e in man["train"].values()} == set(synth.SCENES)
    # The parent folder works too, with the same result.
    again = prep.prepare_dcase2020(os.path.dirname(dataset),
                                   str(tmp_path / "parent"))
    assert load_manifests(again) == man


def test_valid_split_deterministic_by_seed(prep, dataset, tmp_path):
    def valid_ids(seed, fraction, name):
        paths = prep.prepare_dcase2020(
            dataset, str(tmp_path / name), seed=seed,
            valid_locations_fraction=fraction,
        )
        valid = load_manifests(paths)["valid"]
        return {e["identifier"] for e in valid.values()}

    assert valid_ids(1, 0.1, "x") == valid_ids(1, 0.1, "y")
    assert valid_ids(1, 0.1, "x") != valid_ids(2, 0.1, "z")
    # A larger fraction holds out more locations (40 train locations).
    assert len(valid_ids(1, 0.5, "w")) == 20
    assert valid_ids(1, 0.0, "v") == set()


def test_prepare_reuses_and_redoes(prep, copy, tmp_path):
    save = str(tmp_path)
    paths = prep.prepare_dcase2020(copy, save)
    old = 10**9

    def age():
        for path in paths.values():
            os.utime(path, ns=(old, old))

    def rewritten():
        return [os.stat(p).st_mtime_ns != old for p in paths.values()]

    age()
    prep.prepare_dcase2020(copy, save)
    assert rewritten() == [False] * 3
    prep.prepare_dcase2020(copy, save, seed=99)
    assert rewritten() == [True] * 3
    age()
    prep.prepare_dcase2020(copy, save, seed=99, check_audio="full")
    assert rewritten() == [True] * 3
    # Touching a csv without changing it reuses the manifests...
    age()
    meta = os.path.join(copy, "meta.csv")
    os.utime(meta, ns=(old, old))
    prep.prepare_dcase2020(copy, save, seed=99, check_audio="full")
    assert rewritten() == [False] * 3
    # ...an edit is noticed even when size and mtime are kept (cp -p).
    lines = open(meta).read().splitlines(keepends=True)
    with open(meta, "w") as f:
        f.writelines([lines[0], *reversed(lines[1:])])
    os.utime(meta, ns=(old, old))
    prep.prepare_dcase2020(copy, save, seed=99, check_audio="full")
    assert rewritten() == [True] * 3


def damage(folder):
    """Break five files in five ways; return {filename: reason fragment}."""
    rows = read_tsv(os.path.join(folder, "evaluation_setup",
                                 "fold1_train.csv"))
    names = sorted(r["filename"] for r in rows)
    assert len(names) >= 5
    missing, garbage, rate, stereo, label = names[:5]
    os.remove(os.path.join(folder, missing))
    with open(os.path.join(folder, garbage), "wb") as f:
        f.write(b"this is not a wav file " * 40)
    sf.write(os.path.join(folder, rate), np.zeros(4800), 48000,
             subtype="PCM_24")
    sf.write(os.path.join(folder, stereo), np.zeros((4410, 2)), SR,
             subtype="PCM_24")
    train_csv = os.path.join(folder, "evaluation_setup", "fold1_train.csv")
    with open(train_csv, encoding="utf-8") as f:
        text = f.read()
    scene = label.split("/")[1].split("-")[0]
    text = text.replace(f"{label}\t{scene}\n", f"{label}\tlibrary\n")
    with open(train_csv, "w", encoding="utf-8") as f:
        f.write(text)
    return {
        missing: "file not found",
        garbage: "unreadable",
        rate: "48000 Hz",
        stereo: "2 channels",
        label: "unknown scene label 'library'",
    }


def test_bad_files_raise_one_error_naming_each(prep, copy, tmp_path):
    broken = damage(copy)
    with open(os.path.join(copy, "evaluation_setup", "fold1_evaluate.csv"),
              "a", encoding="utf-8") as f:
        f.write("audio/bus-nowhere-9-9-a.wav\tbus\n")
    broken["audio/bus-nowhere-9-9-a.wav"] = "not listed in meta.csv"
    with pytest.raises(prep.DatasetError) as info:
        prep.prepare_dcase2020(copy, str(tmp_path / "save"))
    err = info.value
    assert isinstance(err, ValueError)
    assert len(err.problems) == len(broken)
    message = str(err)
    for name, reason in broken.items():
        line = next(ln for ln in message.splitlines() if name in ln)
        assert reason in line, (name, line)
    assert not os.path.exists(tmp_path / "save" / "train.json")


def test_skip_bad_files_warns_per_file(prep, copy, tmp_path, caplog):
    broken = damage(copy)
    with caplog.at_level(logging.WARNING):
        paths = prep.prepare_dcase2020(copy, str(tmp_path),
                                       skip_bad_files=True)
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING]
    for name in broken:
        assert any(name in w for w in warnings), name
    man = load_manifests(paths)
    kept = {k for entries in man.values() for k in entries}
    stems = {os.path.basename(n)[:-4] for n in broken}
    assert not kept & stems
    rows = read_tsv(os.path.join(copy, "meta.csv"))
    assert len(kept) == len(rows) - len(broken)


def test_full_check_catches_nan_audio(prep, copy, tmp_path):
    rows = read_tsv(os.path.join(copy, "evaluation_setup",
                                 "fold1_evaluate.csv"))
    name = rows[0]["filename"]
    data = np.zeros(SR // 10)
    data[5] = np.nan
    sf.write(os.path.join(copy, name), data, SR, subtype="FLOAT")
    prep.prepare_dcase2020(copy, str(tmp_path / "header"))
    with pytest.raises(prep.DatasetError, match="NaN"):
        prep.prepare_dcase2020(copy, str(tmp_path / "full"),
                               check_audio="full")


@pytest.mark.parametrize("what", ["no_meta", "no_fold", "no_column",
                                  "ragged"])
def test_malformed_csv(prep, copy, tmp_path, what):
    meta = os.path.join(copy, "meta.csv")
    evaluate = os.path.join(copy, "evaluation_setup", "fold1_evaluate.csv")
    if what == "no_meta":
        os.remove(meta)
        expected = "meta.csv"
    elif what == "no_fold":
        os.remove(evaluate)
        expected = "fold1_evaluate.csv not found"
    elif what == "no_column":
        rows = read_tsv(meta)
        with open(meta, "w", encoding="utf-8") as f:
            f.write("filename\tscene_label\tsource_label\n")
            for r in rows:
                f.write(f"{r['filename']}\t{r['scene_label']}\t"
                        f"{r['source_label']}\n")
        expected = "identifier"
    else:
        with open(evaluate, "a", encoding="utf-8") as f:
            f.write("audio/tram-amsterdam-0-0-a.wav\ttram\textra\n")
        expected = "3 fields"
    # Structural problems are never skipped.
    with pytest.raises(prep.DatasetError, match=expected):
        prep.prepare_dcase2020(copy, str(tmp_path), skip_bad_files=True
                               if what != "ragged" else False)


def test_bad_arguments(prep, copy, tmp_path):
    with pytest.raises(ValueError, match="check_audio"):
        prep.prepare_dcase2020(copy, str(tmp_path), check_audio="none")
    with pytest.raises(ValueError, match="fraction"):
        prep.prepare_dcase2020(copy, str(tmp_path),
                               valid_locations_fraction=1.0)


def test_prepare_cli(prep, copy, tmp_path):
    paths = prep.main([os.path.dirname(copy), str(tmp_path), "--seed", "5",
                       "--valid-locations-fraction", "0.3"])
    man = load_manifests(paths)
    assert man["test"] and man["train"]
    assert all(e["device"] in ("a", "b", "s4") for e in man["test"].values())
    assert all(e["device"] in ("a", "b") for e in man["train"].values())


def test_prepare_cli_flags_and_positional_alias(prep, copy, tmp_path, capsys):
    flags = prep.main(["--data_folder", copy, "--save_folder",
                       str(tmp_path / "flags"), "--seed", "5"])
    positional = prep.main([copy, str(tmp_path / "positional"), "--seed",
                            "5"])
    for split in ("train", "valid", "test"):
        with open(flags[split], "rb") as a, open(positional[split], "rb") as b:
            assert a.read() == b.read()
    for argv, fragment in (
        ([copy], "--save_folder"),
        ([copy, str(tmp_path), "--save_folder", str(tmp_path)], "not both"),
    ):
        with pytest.raises(SystemExit) as e:
            prep.main(argv)
        assert e.value.code == 2
        assert fragment in capsys.readouterr().err
