"""Images, sequences and text: the attribution shapes, Grad-CAM on the last conv layer (checked against
Captum called directly) and completeness, on 2-epoch runs of the bundled recipes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dltoolkit.interpret import ExplainError, explain


def _run(tmp_path_factory, recipe: str):
    from dltoolkit.api import run

    return run(
        recipe, out=tmp_path_factory.mktemp(recipe) / "run", overrides={"train.epochs": 2}, plots=False
    )


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return _run(tmp_path_factory, "digits-cnn")


def _complete(row, tolerance: float) -> None:
    values = np.asarray(row.attributions["integrated_gradients"])
    assert values.sum() == pytest.approx(row.output - row.baseline_output, abs=tolerance)
    assert row.delta["integrated_gradients"] < tolerance


def test_image_saliency_integrated_gradients_and_gradcam_for_digits_cnn(digits):
    e = explain(digits, rows=2)
    assert e.kind == "image" and e.methods == ["saliency", "integrated_gradients", "gradcam"]
    assert e.importance is None  # pixels are not columns to shuffle
    for row in e.rows:
        assert {m: v.shape for m, v in row.attributions.items()} == dict.fromkeys(e.methods, (8, 8))
        assert (row.attributions["saliency"] >= 0).all() and (row.attributions["gradcam"] >= 0).all()
        assert row.inputs.shape == (1, 8, 8) and row.inputs.max() <= 16  # the raw pixels, drawn
        assert row.predicted in digits.predictor.classes and row.true in digits.predictor.classes
        _complete(row, 1e-2)
    fig = e.figures()["image_attributions"]
    assert len(fig.axes) == 2 * 4
    assert fig.axes[0].get_title() == f"pred {e.rows[0].predicted} / true {e.rows[0].true}"
    assert fig.axes[3].get_title() == "Grad-CAM"


def test_gradcam_is_captums_layer_gradcam_on_the_last_conv_layer(digits):
    from captum.attr import LayerAttribution, LayerGradCam

    from dltoolkit.interpret._inputs import forward_of, load_rows

    model = digits.predictor
    x = load_rows(model).x[:3]
    forward = forward_of(model)
    target = forward(x).argmax(1)
    cam = LayerGradCam(forward, model.model.layers["conv2"]).attribute(
        x, target=target, relu_attributions=True
    )
    expected = LayerAttribution.interpolate(cam, (8, 8), "bilinear")[:, 0].detach().numpy()
    got = np.stack([r.attributions["gradcam"] for r in explain(digits, rows=3, methods=["gradcam"]).rows])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    with pytest.raises(
        ExplainError, match=r"KernelSHAP does not fit this model.*image.*Use one of \['gradcam'"
    ):
        explain(digits, methods=["kernel_shap"])


@pytest.mark.parametrize(
    ("recipe", "kind", "figure"),
    [
        ("waves-gru", "sequence", "sequence_attributions"),
        ("sentences-transformer", "text", "token_attributions"),
    ],
    ids=["sequence", "text"],
)
def test_attribution_over_time_steps_and_tokens(recipe, kind, figure, tmp_path_factory):
    result = _run(tmp_path_factory, recipe)
    threads = torch.get_num_threads()
    e = explain(result, rows=3)
    assert torch.get_num_threads() == threads  # explain runs on the spec's threads, then gives them back
    assert e.kind == kind and e.methods == ["integrated_gradients"]
    for row in e.rows:
        values = row.attributions["integrated_gradients"]
        assert values.shape == (len(row.labels),)
        _complete(row, 5e-2)
    if kind == "sequence":
        assert e.rows[0].labels == [f"t{t}" for t in range(32)]
    else:  # the words of the raw text, in order (LayerIntegratedGradients on the embedding)
        from dltoolkit.data.text import tokenize
        from dltoolkit.interpret._inputs import load_rows

        texts = load_rows(result.predictor).raw["text"]
        config = result.spec.preprocess.text
        for row in e.rows:
            assert row.labels == tokenize(texts.iloc[row.row], config)[: config.max_len]
    assert set(e.figures()) == {figure}
