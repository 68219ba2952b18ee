"""srgan-export: ONNX (onnxruntime, chaiNNer) and NCNN (Upscayl, chaiNNer) files that compute what upscale() does."""

import numpy as np
import pytest
from PIL import Image

from srgan_hub.cli import export_main
from srgan_hub.export import export, rename_blobs
from srgan_hub.inference import load_model, upscale

MODELS = ["srgan-x4", "srresnet-x4-real"]


def set5_lr(data_dir) -> list[Image.Image]:
    folder = data_dir / "benchmarks" / "LR_x4_matlab_bicubic" / "Set5"
    return [Image.open(path).convert("RGB") for path in sorted(folder.glob("*.png"))]


def chw(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image, np.float32).transpose(2, 0, 1) / 255)


def to_uint8(output: np.ndarray) -> np.ndarray:
    """A C x H x W [0, 1] output as upscale() writes it: rounded to 8 bits."""
    return np.round(np.clip(output, 0, 1) * 255).transpose(1, 2, 0).astype(np.uint8)


def largest_difference(ours: np.ndarray, reference: Image.Image) -> int:
    return int(np.abs(ours.astype(int) - np.asarray(reference, dtype=int)).max())


@pytest.mark.parametrize("name", MODELS)
def test_onnx_export_matches_pytorch_fp32_on_set5(data_dir, tmp_path, name):
    onnxruntime = pytest.importorskip("onnxruntime")
    model = load_model(name)
    onnx_file, card = export(model, "onnx", tmp_path, name)
    assert onnx_file.name == f"{name}.onnx" and "onnxruntime.InferenceSession" in card.read_text()
    session = onnxruntime.InferenceSession(str(onnx_file))
    assert [i.name for i in session.get_inputs()] == ["input"] and [o.name for o in session.get_outputs()] == ["output"]
    for lr in set5_lr(data_dir):  # five sizes, none of them the 32 x 32 the export traced
        output = session.run(["output"], {"input": chw(lr)[None]})[0][0]
        assert largest_difference(to_uint8(output), upscale(lr, model, dtype="fp32")) <= 1


def test_onnx_export_takes_any_batch_and_size(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    model = load_model("srgan-x4")
    session = onnxruntime.InferenceSession(str(export(model, "onnx", tmp_path, "srgan-x4")[0]))
    batch = np.random.default_rng(0).random((2, 3, 17, 45), dtype=np.float32)
    output = session.run(["output"], {"input": batch})[0]
    assert output.shape == (2, 3, 68, 180) and 0 <= output.min() and output.max() <= 1
    single = session.run(["output"], {"input": batch[1:]})[0]
    np.testing.assert_allclose(output[1:], single, atol=1e-5)  # images in a batch do not mix


@pytest.mark.parametrize("name", MODELS)
def test_ncnn_export_follows_upscayl_and_matches_pytorch_on_set5(data_dir, tmp_path, name):
    pytest.importorskip("pnnx", reason="the NCNN export needs the pnnx converter (pip install pnnx)")
    ncnn = pytest.importorskip("ncnn", reason="running the NCNN export needs the ncnn package (pip install ncnn)")
    model = load_model(name)
    param, weights, card = export(model, "ncnn", tmp_path, name)
    assert (param.name, weights.name) == (f"{name}.param", f"{name}.bin")  # Upscayl reads the scale from "x4"
    assert "Input in0 0 1 data" in param.read_text() and " output " in param.read_text() + " "
    assert "Upscayl" in card.read_text()
    net = ncnn.Net()
    net.opt.num_threads = 2
    assert net.load_param(str(param)) == 0 and net.load_model(str(weights)) == 0
    for lr in set5_lr(data_dir):
        extractor, pixels = net.create_extractor(), chw(lr)  # ncnn.Mat wraps the array: keep it alive
        extractor.input("data", ncnn.Mat(pixels))
        status, output = extractor.extract("output")
        assert status == 0
        assert largest_difference(to_uint8(np.array(output)), upscale(lr, model, dtype="fp32")) <= 2


def test_rename_blobs_touches_only_blob_fields():
    param = "7767517\n3 3\nInput in0 0 1 in0\nConvolution conv_0 1 1 in0 1 0=64 1=3\nTanH out0 1 1 1 out0\n"
    renamed = rename_blobs(param, {"in0": "data", "out0": "output"})
    assert renamed.splitlines()[2:] == [
        "Input in0 0 1 data",
        "Convolution conv_0 1 1 data 1 0=64 1=3",
        "TanH out0 1 1 1 output",
    ]


def test_export_cli_refuses_what_is_not_a_model_and_overwriting(tmp_path, capsys):
    assert export_main([str(tmp_path), "--format", "onnx", "-o", str(tmp_path / "out")]) == 2
    assert f"{tmp_path} is not a model folder, bundled model or Hub id" in capsys.readouterr().err
    assert export_main(["nobody/no-such-model", "--format", "onnx", "-o", str(tmp_path / "out")]) == 2
    assert "nobody/no-such-model is not a model" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

    out = tmp_path / "exports"
    assert export_main(["srresnet-x4", "--format", "onnx", "-o", str(out)]) == 0
    onnx_file = out / "srresnet-x4.onnx"
    before = onnx_file.read_bytes()
    onnx_file.write_bytes(b"a user's file")
    assert export_main(["srresnet-x4", "--format", "onnx", "-o", str(out)]) == 2
    assert "pass --force" in capsys.readouterr().err and onnx_file.read_bytes() == b"a user's file"
    assert export_main(["srresnet-x4", "--format", "onnx", "-o", str(out), "--force"]) == 0
    assert onnx_file.read_bytes() == before  # the same model exports to the same file

    other = tmp_path / "theirs"
    other.mkdir()
    (other / "README.md").write_text("my notes")
    assert export_main(["srresnet-x4", "--format", "onnx", "-o", str(other), "--name", "mine"]) == 2
    assert (other / "README.md").read_text() == "my notes" and not (other / "mine-x4.onnx").exists()
