"""Export of the front-end lobes: TorchScript, ONNX and torch.compile."""

import warnings

import pytest
import torch

from speechbrain_relevance.lobes import (
    CosGaussFilterbank,
    MultiHeadRelevance,
    SincFilterbank,
)

SMALL = dict(
    n_filters=16,
    sample_rate=16000,
    win_length=400,
    hop_length=160,
    kernel_size=101,
)


def pair(cls):
    spectral = cls(mode="spectral", **SMALL).eval()
    dft = cls(mode="dft", **SMALL).eval()
    dft.load_state_dict(spectral.state_dict())
    return spectral, dft


@pytest.mark.parametrize("cls", [CosGaussFilterbank, SincFilterbank])
def test_dft_mode_equals_spectral_values_and_gradients(cls):
    torch.manual_seed(0)
    spectral, dft = pair(cls)
    x = torch.randn(2, 3000)
    a, b = spectral(x), dft(x)
    ea, eb = a.double().exp(), b.double().exp()
    assert ((ea - eb).abs() / ea).max() < 1e-5
    a.sum().backward()
    b.sum().backward()
    for pa, pb in zip(spectral.parameters(), dft.parameters()):
        assert torch.allclose(pa.grad, pb.grad, rtol=1e-3, atol=1e-6)


def test_dft_buffers_are_not_in_checkpoints():
    _, dft = pair(CosGaussFilterbank)
    assert set(dft.state_dict()) == {"theta"}


@pytest.mark.parametrize("mode", ["spectral", "dft"])
def test_torchscript_trace_any_length(mode):
    torch.manual_seed(1)
    fbank = CosGaussFilterbank(mode=mode, **SMALL).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(fbank, torch.randn(2, 3000))
    for shape in [(1, 2000), (3, 8000)]:
        x = torch.randn(*shape)
        assert torch.allclose(traced(x), fbank(x), atol=1e-5)


@pytest.mark.parametrize("cls", [CosGaussFilterbank, SincFilterbank])
def test_onnx_export_dft_mode_matches_with_dynamic_shapes(cls, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(2)
    _, dft = pair(cls)
    path = str(tmp_path / "frontend.onnx")
    batch = torch.export.Dim("batch", max=64)
    time_ = torch.export.Dim("time", min=400, max=10**7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            dft,
            (torch.randn(2, 3000),),
            path,
            input_names=["wavs"],
            output_names=["feats"],
            dynamo=True,
            dynamic_shapes={"wavs": {0: batch, 1: time_}},
        )
    session = ort.InferenceSession(path)
    for shape in [(1, 1600), (3, 5000)]:
        x = torch.randn(*shape)
        (out,) = session.run(None, {"wavs": x.numpy()})
        expected = dft(x).detach()
        assert out.shape == tuple(expected.shape)
        assert torch.allclose(torch.from_numpy(out), expected, atol=1e-3)


def test_onnx_export_relevance(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(3)
    rel = MultiHeadRelevance(n_bands=16, n_heads=2, context=3).eval()
    path = str(tmp_path / "relevance.onnx")
    frames = torch.export.Dim("frames", min=2, max=10**5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            rel,
            (torch.randn(2, 30, 16),),
            path,
            dynamo=True,
            dynamic_shapes={"x": {1: frames}},
        )
    session = ort.InferenceSession(path)
    x = torch.randn(2, 45, 16)
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert torch.allclose(torch.from_numpy(out), rel(x).detach(), atol=1e-5)


@pytest.mark.parametrize("mode", ["spectral", "dft"])
def test_torch_compile_fullgraph(mode):
    torch._dynamo.reset()
    torch.manual_seed(4)
    fbank = CosGaussFilterbank(mode=mode, **SMALL)
    rel = MultiHeadRelevance(n_bands=16, n_heads=2, context=3)
    model = torch.nn.Sequential(fbank, rel)
    # aot_eager runs the full compile stack (graph capture, autograd
    # tracing) without the minutes of C++ code generation of inductor.
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 3000)
    out = compiled(x)
    assert torch.allclose(out, model(x), atol=1e-5)
    out.sum().backward()
    assert fbank.theta.grad is not None


def test_card_command_never_shows_the_trainers_relative_data_path(tmp_path):
    """A relative data folder is right only from where training ran."""
    from speechbrain_relevance.export.card import training_command

    (tmp_path / "hyperparams.yaml").write_text("data_folder: x\n")
    for given in ("../../shared/datasets/fsdd", "/data/fsdd", "fsdd/"):
        command, _ = training_command(str(tmp_path), {"data_folder": given})
        assert "--data_folder=/path/to/fsdd" in command, command
        assert "shared" not in command and "/data/" not in command
