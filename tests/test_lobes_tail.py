"""The front-ends' shared tail and the families' constructors (issue 32)."""

import ast
import inspect
import re
from pathlib import Path

import pytest
import torch

from speechbrain_relevance.lobes import (
    PCEN,
    CosGaussFilterbank,
    LearnableFilterbank,
    LogCompression,
    MelFilterbank,
    SincFilterbank,
)
from speechbrain_relevance.lobes import functional as fb

ROOT = Path(__file__).resolve().parents[1]
LOBES = ROOT / "speechbrain_relevance" / "lobes"
SMALL = dict(
    n_filters=12,
    sample_rate=8000,
    win_length=200,
    hop_length=80,
    kernel_size=129,
)
# The engine's options that the families forward by keyword.
ENGINE_OPTIONS = [
    name
    for name in inspect.signature(LearnableFilterbank).parameters
    if name not in SMALL
]


def test_tail_formula():
    torch.manual_seed(0)
    energy = torch.rand(2, 5, 3) * 10
    gain = torch.rand(3) + 0.5
    out = fb.compress_band_energy(energy, 7, 1e-2, gain=gain)
    assert torch.equal(out, torch.log(energy / 7 * gain + 1e-2))
    comp = LogCompression(3)
    out = fb.compress_band_energy(energy, 7, 1e-2, comp)
    assert torch.equal(out, comp(energy / 7))
    half = fb.compress_band_energy(energy, 7, compression=torch.Tensor.half)
    assert half.dtype == torch.float32


@pytest.mark.parametrize("mode", ["spectral", "dft", "conv"])
def test_engine_output_is_the_tail_of_its_energies(mode):
    torch.manual_seed(0)
    bank = CosGaussFilterbank(mode=mode, learn_gain=True, **SMALL)
    with torch.no_grad():
        bank.log_gain.normal_()
    wavs = torch.randn(2, 4000)
    frames = fb.frame_signal(wavs, bank.win_length, bank.hop_length)
    with torch.no_grad():
        _, kernels, order = bank._sorted_filters()
        energy = fb.conv_band_energy(frames, kernels, "full")
        expected = fb.compress_band_energy(
            energy,
            bank.win_length - bank.kernel_size + 1,
            bank.log_eps,
            gain=torch.exp(bank.log_gain)[order],
        )
        bank.padding = "full"
        out = bank(wavs)
    assert torch.allclose(out, expected, atol=1e-4)


def test_mel_imports_no_private_names():
    tree = ast.parse((LOBES / "mel.py").read_text())
    private = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name.startswith("_")
    ]
    used = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "fb"
        and node.attr.startswith("_")
    ]
    assert private == [] and used == []


@pytest.mark.parametrize("cls", [CosGaussFilterbank, SincFilterbank])
def test_families_take_every_engine_option_by_keyword(cls):
    options = dict(
        mode="conv",
        padding="full",
        log_eps=0.5,
        freeze=True,
        learn_gain=True,
        compression=PCEN(12),
    )
    assert sorted(options) == sorted(ENGINE_OPTIONS)
    bank = cls(**options, **SMALL)
    for name, value in options.items():
        assert getattr(bank, name) is value, name
    assert not any(
        p.requires_grad for n, p in bank.named_parameters()
        if not n.startswith("compression.")
    )
    with pytest.raises(TypeError, match="no_such_option"):
        cls(no_such_option=1, **SMALL)


@pytest.mark.parametrize("cls", [CosGaussFilterbank, SincFilterbank])
def test_family_docstrings_name_every_argument(cls):
    doc = cls.__doc__
    for name in inspect.signature(cls).parameters:
        if name == "kwargs":
            assert "**kwargs" in doc
        else:
            assert re.search(rf"^    {name} : ", doc, re.M), name
    for name in ENGINE_OPTIONS:
        assert f"``{name}``" in doc, name


def test_positional_construction_as_before():
    torch.manual_seed(0)
    a = CosGaussFilterbank(12, 8000, 200, 80, 129, "linear", 50.0, 3000.0, 5.0)
    b = CosGaussFilterbank(
        init="linear", f_min=50.0, f_max=3000.0, bandwidth_scale=5.0,
        **SMALL,
    )
    assert torch.equal(a.theta, b.theta) and a.bandwidth_scale == 5.0
    s = SincFilterbank(12, 8000, 200, 80, 129, 40.0, 3500.0, 30.0, 30.0)
    assert (s.min_low_hz, s.min_band_hz) == (30.0, 30.0)
    # Past the family's own arguments, options are keyword only: a tenth
    # positional argument is refused rather than taken for another one.
    with pytest.raises(TypeError):
        CosGaussFilterbank(12, 8000, 200, 80, 129, "mel", 0.0, None, 10.0,
                           True)
    with pytest.raises(TypeError):
        SincFilterbank(12, 8000, 200, 80, 129, 30.0, None, 50.0, 50.0,
                       "conv")


def _yaml_keys(cls_name):
    """Keys given to ``!new:...lobes.<cls_name>`` in the recipes' yaml."""
    keys = set()
    pattern = re.compile(
        rf"!new:speechbrain_relevance\.lobes\.{cls_name}\n((?:#?[ ]{{4}}"
        rf"[^\n]*\n|\n)+)"
    )
    files = list(ROOT.glob("recipes/**/*.yaml"))
    for path in files:
        for block in pattern.findall(path.read_text()):
            keys |= set(re.findall(r"^#?    ([a-z_]+):", block, re.M))
    return keys


@pytest.mark.parametrize(
    "cls", [CosGaussFilterbank, SincFilterbank, MelFilterbank]
)
def test_recipe_yaml_keys_are_accepted(cls):
    keys = _yaml_keys(cls.__name__)
    accepted = set(inspect.signature(cls).parameters)
    if "kwargs" in accepted:
        accepted |= set(ENGINE_OPTIONS)
    assert keys, cls.__name__
    assert keys <= accepted, keys - accepted


def test_n_bands_checked_as_positive_int():
    for value in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="n_bands must be a positive"):
            LogCompression(value)
        with pytest.raises(ValueError, match="n_bands must be a positive"):
            PCEN(value)
