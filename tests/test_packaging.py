"""The distributions ``python -m build`` makes, and the wheel installed alone.

The source tree (tracked and untracked, not ignored files: what a clone
plus work in progress holds) is copied to a temporary folder and built
there with ``python -m build --no-isolation`` (no network needed; the
backend comes from the ``dev`` extra), so stale ``build/`` folders or
egg-info of the checkout can neither leak into nor hide from the result.

The wheel is then installed with ``pip --no-deps --no-index`` into a fresh
virtual environment that borrows torch, speechbrain and the other
dependencies from the development environment's site-packages through a
path file, but not its editable install of this project (path files of
that folder are not processed, and the test checks where the package is
imported from). It runs from a temporary directory with no path of the
repository on ``sys.path``.
"""

import ast
import email
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import speechbrain_relevance

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "speechbrain_relevance"
DIST = "speechbrain-relevance"
FSDD_MODEL = os.path.join(REPO, "pretrained", "fsdd-relevance-2head")
FSDD_CLIP = os.path.join(
    REPO, "tests", "data", "fsdd", "recordings", "5_theo_0.wav"
)
IGNORED_FOR_COPY = (".git", ".venv", "results", "build", "dist")


def _source_files():
    """Files of the checkout a clone would have, plus untracked work."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [
        f
        for f in out
        if os.path.isfile(os.path.join(REPO, f))
        and f.split("/")[0] not in IGNORED_FOR_COPY
    ]


def _env(**extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env.update(OMP_NUM_THREADS="1", PYTHONNOUSERSITE="1", **extra)
    return env


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """Build the sdist and the wheel from a copy of the source tree."""
    root = tmp_path_factory.mktemp("packaging")
    src = root / "src"
    for rel in _source_files():
        dest = src / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(REPO, rel), dest)
    outdir = root / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation",
         "--outdir", str(outdir), str(src)],
        cwd=root,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    wheels = sorted(outdir.glob("*.whl"))
    sdists = sorted(outdir.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, os.listdir(outdir)
    return {"root": root, "wheel": wheels[0], "sdist": sdists[0]}


def _wheel_metadata(wheel):
    with zipfile.ZipFile(wheel) as z:
        name = next(
            n for n in z.namelist() if n.endswith(".dist-info/METADATA")
        )
        return email.message_from_bytes(z.read(name))


def _package_modules():
    """The package's ``.py`` files, relative to the repository."""
    return {
        os.path.relpath(os.path.join(d, f), REPO).replace(os.sep, "/")
        for d, _, files in os.walk(os.path.join(REPO, PACKAGE))
        for f in files
        if f.endswith(".py")
    }


def test_wheel_carries_the_package_only(dists):
    with zipfile.ZipFile(dists["wheel"]) as z:
        names = z.namelist()
        entry_points = next(
            z.read(n).decode()
            for n in names
            if n.endswith(".dist-info/entry_points.txt")
        )
    dist_info = f"{PACKAGE}-{speechbrain_relevance.__version__}.dist-info/"
    outside = [
        n
        for n in names
        if not n.startswith(f"{PACKAGE}/") and not n.startswith(dist_info)
    ]
    assert outside == []
    assert f"{dist_info}licenses/LICENSE" in names
    forbidden = ("tests/", "recipes/", "pretrained/", "benchmarks/", "docs/")
    assert not [n for n in names if any(f in n for f in forbidden)]
    assert not [
        n for n in names if n.endswith((".wav", ".ckpt", ".flac", ".pt"))
    ]
    # Every module of the source package is in the wheel.
    modules = _package_modules()
    assert f"{PACKAGE}/__init__.py" in modules
    assert modules <= set(names), sorted(modules - set(names))
    assert (
        "sb-relevance-export = speechbrain_relevance.export:main"
        in entry_points
    )
    assert (
        "sb-relevance-analysis = speechbrain_relevance.analysis.__main__:main"
        in entry_points
    )


def test_sdist_has_sources_but_no_audio_or_checkpoints(dists):
    with tarfile.open(dists["sdist"]) as t:
        names = [m.name.split("/", 1)[-1] for m in t.getmembers()]
    for required in ("pyproject.toml", "setup.py", "README.md", "LICENSE",
                     "CHANGELOG.md", "CITATION.cff"):
        assert required in names, required
    assert _package_modules() <= set(names)
    assert not [
        n for n in names if n.endswith((".wav", ".ckpt", ".flac", ".pt"))
    ]
    assert not [n for n in names if n.startswith(("pretrained/", "results/"))]


def test_setup_py_is_a_shim_reading_pyproject(dists):
    """``setup.py`` holds no metadata and reports pyproject's version."""
    path = os.path.join(REPO, "setup.py")
    assert os.path.isfile(path)
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    calls = [
        n for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup"
    ]
    # One bare setup() call: nothing duplicated from pyproject.toml.
    assert len(calls) == 1 and not calls[0].args and not calls[0].keywords
    # Run in the copy of the source tree, so the checkout stays clean.
    proc = subprocess.run(
        [sys.executable, "setup.py", "--version"],
        cwd=dists["root"] / "src",
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == (
        speechbrain_relevance.__version__
    )
    assert _wheel_metadata(dists["wheel"])["Version"] == (
        speechbrain_relevance.__version__
    )


def test_metadata_version_license_and_python(dists):
    meta = _wheel_metadata(dists["wheel"])
    assert meta["Name"] == DIST
    assert meta["Version"] == speechbrain_relevance.__version__
    Version(meta["Version"])  # a valid PEP 440 version
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Requires-Python"] == ">=3.9"
    assert "Cos-Gauss" in meta["Summary"]
    assert meta["Description-Content-Type"] == "text/markdown"
    assert "# speechbrain-relevance" in meta.get_payload()
    # The editable install of the checkout reports the same version.
    assert metadata.version(DIST) == speechbrain_relevance.__version__


def test_citation_and_changelog_match_the_release(dists):
    import yaml

    meta = _wheel_metadata(dists["wheel"])
    version = speechbrain_relevance.__version__
    with open(os.path.join(REPO, "CITATION.cff"), encoding="utf-8") as f:
        cff = yaml.safe_load(f)
    assert cff["cff-version"] == "1.2.0"
    assert str(cff["version"]) == version
    assert cff["license"] == meta["License-Expression"]
    urls = [u.split(", ", 1)[1] for u in meta.get_all("Project-URL")]
    assert cff["repository-code"] in urls
    paper = cff["preferred-citation"]
    assert paper["year"] == 2021
    assert "Relevance Weighting" in paper["title"]
    assert [a["family-names"] for a in paper["authors"]] == [
        "Dutta", "Agrawal", "Ganapathy"
    ]
    with open(os.path.join(REPO, "CHANGELOG.md"), encoding="utf-8") as f:
        assert f"## [{version}]" in f.read()
    with open(os.path.join(REPO, "LICENSE"), encoding="utf-8") as f:
        text = f.read()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def _requirements(meta):
    reqs = [Requirement(r) for r in meta.get_all("Requires-Dist")]
    runtime = {
        canonicalize_name(r.name): r for r in reqs if r.marker is None
    }
    extras = {}
    for r in reqs:
        if r.marker is not None:
            for extra in ("dev", "plots"):
                if r.marker.evaluate({"extra": extra}):
                    extras.setdefault(extra, {})[
                        canonicalize_name(r.name)
                    ] = r
    return runtime, extras


def _lower_bound(req):
    bounds = [Version(s.version) for s in req.specifier if s.operator == ">="]
    assert len(bounds) == 1, f"{req} needs exactly one >= bound"
    return bounds[0]


def test_dependency_bounds_are_consistent(dists):
    runtime, extras = _requirements(_wheel_metadata(dists["wheel"]))
    expected = {"torch", "torchaudio", "speechbrain", "hyperpyyaml",
                "pyyaml", "ruamel-yaml", "sentencepiece", "soundfile",
                "numpy"}
    assert expected <= set(runtime), sorted(expected - set(runtime))
    assert set(extras) == {"dev", "plots"}
    assert {"pytest", "ruff", "yamllint", "onnx", "onnxscript",
            "onnxruntime", "build"} <= set(extras["dev"])
    assert "matplotlib" in extras["plots"]
    # torchaudio X.Y.Z requires torch==X.Y.Z: the torch floor may not be
    # below the torch that the oldest allowed torchaudio needs.
    assert _lower_bound(runtime["torch"]) >= _lower_bound(
        runtime["torchaudio"]
    )
    # Not below the floors of the speechbrain release we allow at least.
    sb_reqs = {
        canonicalize_name(r.name): r
        for r in map(Requirement, metadata.requires("speechbrain") or [])
        if r.marker is None
    }
    for name in ("torch", "torchaudio", "soundfile", "sentencepiece"):
        assert _lower_bound(runtime[name]) >= _lower_bound(sb_reqs[name]), (
            name
        )
    # hyperpyyaml's own ruamel.yaml floor.
    hp_reqs = {
        canonicalize_name(r.name): r
        for r in map(Requirement, metadata.requires("hyperpyyaml") or [])
    }
    assert _lower_bound(runtime["ruamel-yaml"]) >= _lower_bound(
        hp_reqs["ruamel-yaml"]
    )
    # The environment the tests run in satisfies every runtime requirement.
    for req in runtime.values():
        installed = metadata.version(req.name)
        assert req.specifier.contains(installed, prereleases=True), (
            f"{req} but {installed} installed"
        )


def _guarded_imports(tree):
    """Imports inside ``try`` blocks that catch ``ImportError``."""
    guarded = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = set()
        for handler in node.handlers:
            kinds = handler.type
            kinds = kinds.elts if isinstance(kinds, ast.Tuple) else [kinds]
            caught |= {getattr(k, "id", None) for k in kinds}
        if caught & {"ImportError", "ModuleNotFoundError"}:
            for stmt in node.body:
                guarded |= set(map(id, ast.walk(stmt)))
    return guarded


def _third_party_imports():
    """Top-level modules imported by the package: at module level or not.

    Imports guarded by ``except ImportError`` are optional and not listed.
    """
    top, lazy = set(), set()
    for d, _, files in os.walk(os.path.join(REPO, PACKAGE)):
        for f in files:
            if not f.endswith(".py"):
                continue
            with open(os.path.join(d, f), encoding="utf-8") as fh:
                tree = ast.parse(fh.read())
            module_level = set(map(id, tree.body))
            guarded = _guarded_imports(tree)
            for node in ast.walk(tree):
                if id(node) in guarded:
                    continue
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    root = name.split(".")[0]
                    if root in sys.stdlib_module_names or root == PACKAGE:
                        continue
                    (top if id(node) in module_level else lazy).add(root)
    return top, lazy


def test_every_imported_distribution_is_declared(dists):
    runtime, extras = _requirements(_wheel_metadata(dists["wheel"]))
    optional = set().union(*map(set, extras.values()))
    providers = metadata.packages_distributions()
    top, lazy = _third_party_imports()
    assert {"torch", "speechbrain"} <= top  # the scan sees imports at all
    for module in top | lazy:
        dists_of = {canonicalize_name(d) for d in providers.get(module, [])}
        assert dists_of, f"{module} is imported but not installed"
        declared = runtime if module in top else set(runtime) | optional
        assert dists_of & set(declared), (
            f"{module} (from {sorted(dists_of)}) is not a dependency"
        )


FRESH_CHECK = textwrap.dedent(
    """
    import json, os, sys
    import torch
    import speechbrain_relevance
    from speechbrain_relevance.lobes import CosGaussFilterbank
    from speechbrain_relevance.inference import RelevanceClassifier

    torch.manual_seed(0)
    fbank = CosGaussFilterbank(n_filters=80, sample_rate=44100)
    feats = fbank(torch.randn(2, 44100))
    clf = RelevanceClassifier.from_hparams(
        source=sys.argv[1], savedir=sys.argv[2],
        run_opts={"device": "cpu"})
    out_prob, score, index, label = clf.classify_file(sys.argv[3])
    print(json.dumps({
        "file": speechbrain_relevance.__file__,
        "version": speechbrain_relevance.__version__,
        "sys_path": sys.path,
        "shape": list(feats.shape),
        "finite": bool(torch.isfinite(feats).all()),
        "label": label,
        "n_classes": out_prob.shape[-1],
    }))
    """
)


@pytest.fixture(scope="module")
def fresh_venv(dists):
    """A new virtual environment with the wheel installed, not editable."""
    venv = dists["root"] / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        check=True,
        timeout=120,
    )
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; "
         "print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, env=_env(),
    ).stdout.strip()
    # Dependencies from the development environment (a plain path entry:
    # the .pth files there, the editable finder among them, are not run).
    dev_site = sysconfig.get_paths()["purelib"]
    with open(os.path.join(site, "dev_dependencies.pth"), "w") as f:
        f.write(dev_site + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install",
         "--no-deps", "--no-index", "--no-cache-dir", "--quiet",
         str(dists["wheel"])],
        capture_output=True, text=True, env=_env(), timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"venv": venv, "python": python, "site": site,
            "dev_site": dev_site}


def test_installed_wheel_works_outside_the_repository(fresh_venv, tmp_path):
    model = tmp_path / "fsdd-relevance-2head"
    shutil.copytree(FSDD_MODEL, model)
    clip = tmp_path / "5_theo_0.wav"
    shutil.copy2(FSDD_CLIP, clip)
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        [str(fresh_venv["python"]), "-c", FRESH_CHECK, str(model),
         str(tmp_path / "savedir"), str(clip)],
        cwd=work, capture_output=True, text=True, env=_env(), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # Imported from the wheel's copy in the fresh environment.
    assert result["file"].startswith(fresh_venv["site"] + os.sep)
    assert result["version"] == speechbrain_relevance.__version__
    # Nothing of the repository on sys.path but the borrowed site-packages.
    repo_paths = [
        p for p in result["sys_path"]
        if p and os.path.realpath(p).startswith(os.path.realpath(REPO))
        and os.path.realpath(p) != os.path.realpath(fresh_venv["dev_site"])
    ]
    assert repo_paths == []
    assert result["shape"] == [2, 1 + 44100 // 1024, 80]
    assert result["finite"]
    assert result["n_classes"] == 10
    assert result["label"] == ["5"]


@pytest.mark.parametrize(
    "script, words",
    [("sb-relevance-export", "export"),
     ("sb-relevance-analysis", "analysis")],
)
def test_console_scripts_of_the_installed_wheel(
    fresh_venv, tmp_path, script, words
):
    exe = fresh_venv["venv"] / "bin" / script
    assert exe.is_file()
    proc = subprocess.run(
        [str(exe), "--help"],
        cwd=tmp_path, capture_output=True, text=True, env=_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("usage:")
    assert words in proc.stdout.lower()
    # The script runs the wheel's code, not the checkout's.
    assert str(fresh_venv["venv"]) in exe.read_text().splitlines()[0]


def test_analysis_console_script_runs_on_a_model_folder(fresh_venv, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(FSDD_MODEL, model)
    out = tmp_path / "analysis"
    proc = subprocess.run(
        [str(fresh_venv["venv"] / "bin" / "sb-relevance-analysis"),
         str(model), "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, env=_env(),
        timeout=300,
    )
    # The run itself succeeds: it writes the figures and tables.
    assert (out / "center_frequencies.png").is_file()
    assert (out / "parameters.json").is_file()
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_readme_installs_the_wheel_the_build_makes(dists):
    """The README's wheel command names the file `python -m build` makes."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    install = readme.split("## Install")[1].split("\n## ")[0]
    assert f"pip install dist/{dists['wheel'].name}" in install
    # The source install lines are the Makefile's own steps.
    with open(os.path.join(REPO, "Makefile"), encoding="utf-8") as f:
        makefile = f.read()
    assert "-c requirements/constraints.txt torch torchaudio" in install
    assert "-c requirements/constraints.txt \\\n\t\ttorch torchaudio" in (
        makefile
    )
