"""Text and tabular inputs: the shared tokenizer, padding-invariant text models, the pretrained
MiniLM classifier, the table encoding; and resnet_small's shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from dlworkflow.errors import DlwError
from dlworkflow.models import (
    VOCAB_SIZE,
    ModelParamError,
    TableInputError,
    create_model,
    encode_table,
    feature_names,
    fit_table_encoding,
    n_features,
    text_embedder,
    tokenize,
)

CLS, SEP = 101, 102
TEXTS = [
    "A gripping, beautifully acted thriller.",
    "Dull.",
    "The plot wanders and the jokes fall flat, but the score is lovely.",
]


def test_tokenize_pads_truncates_and_keeps_sep_last():
    ids = tokenize(TEXTS, 128)
    assert ids.dtype == np.int64 and ids.shape[0] == 3
    lengths = (ids != 0).sum(1)
    assert ids.shape[1] == lengths.max() and lengths[1] == 4  # [CLS] dull . [SEP]
    assert (ids[:, 0] == CLS).all() and ids[1, 3] == SEP and (ids[1, 4:] == 0).all()
    assert ids.max() < VOCAB_SIZE
    assert np.array_equal(tokenize(["DULL."], 128), ids[1:2, :4])  # lower-cased
    short = tokenize(TEXTS, 5)
    assert short.shape == (3, 5) and (short[[0, 2], 4] == SEP).all()
    assert tokenize([], 16).shape == (0, 2)
    with pytest.raises(DlwError, match="list of strings"):
        tokenize("one text", 16)
    with pytest.raises(ValueError, match="max_len"):
        tokenize(TEXTS, 1)


@pytest.mark.parametrize("name", ["bilstm", "transformer"])
def test_text_models_ignore_padding_and_batch_company(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=2).eval()
    ids = torch.from_numpy(tokenize(TEXTS, 64))
    padded = torch.cat([ids, torch.zeros(3, 9, dtype=torch.long)], 1)
    with torch.inference_mode():
        alone = torch.cat([model(ids[i : i + 1]) for i in range(3)])
        assert torch.allclose(model(ids), alone, atol=1e-5)
        assert torch.allclose(model(padded), alone, atol=1e-5)
    assert model.preprocessing == {
        "modality": "text",
        "max_len": 128,
        "tokenizer": "minilm-wordpiece",
    }


def test_transformer_takes_at_most_max_len_tokens_and_bad_params_are_clear():
    model = create_model("transformer", num_classes=2, max_len=8, d_model=32, heads=2).eval()
    with torch.inference_mode():
        assert model(torch.randint(1, 100, (2, 20))).shape == (2, 2)
    with pytest.raises(ModelParamError, match="multiple of heads"):
        create_model("transformer", num_classes=2, d_model=30, heads=4)
    with pytest.raises(ModelParamError, match="max_len"):
        create_model("bilstm", num_classes=2, max_len=10_000)


def test_minilm_classifier_features_are_the_packaged_sentence_embeddings():
    """Pretrained weights, tokenizer and pooling are those of text_embedder(): with
    normalize=True the classifier's features ARE the sentence vectors."""
    model = create_model("minilm_classifier", num_classes=2, normalize=True).eval()
    ids = torch.from_numpy(tokenize(TEXTS, 128))
    with torch.inference_mode():
        feats = model.features(ids).numpy()
    expected = text_embedder().embed(TEXTS)
    np.testing.assert_allclose(feats, expected, atol=1e-4)
    assert model.parameter_count() > 22e6
    assert {n for n, p in model.named_parameters() if n.startswith("head.")} == {
        "head.weight",
        "head.bias",
    }


def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "f:age": [20.0, 30.0, np.nan, 50.0],
            "f:city": ["paris", "oslo", None, "paris"],
            "f:const": [1.0, 1.0, 1.0, 1.0],
        }
    )


def test_table_encoding_standardises_numbers_and_one_hots_strings():
    prep = fit_table_encoding(table(), {"age": "number", "city": "string", "const": "number"})
    assert prep["numeric"] == ["age", "const"] and prep["categories"] == {"city": ["paris", "oslo"]}
    assert prep["mean"][0] == pytest.approx(100 / 3) and prep["std"][1] == 1.0
    x = encode_table(table(), prep)
    assert x.dtype == np.float32 and x.shape == (4, n_features(prep)) == (4, 5)
    assert feature_names(prep) == ["age", "const", "city=paris", "city=oslo", "city=other"]
    assert x[2, 0] == 0.0  # missing -> the train mean -> 0
    assert x[:, 0][[0, 1, 3]].mean() == pytest.approx(0.0, abs=1e-6)
    assert (x[:, 1] == 0).all()  # a constant is centred, not blown up
    assert x[:, 2:].tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]]
    # unseen categories go to "other"; plain column names work too (serving)
    other = encode_table(pd.DataFrame({"age": [100 / 3], "city": ["rome"], "const": [1]}), prep)
    assert other.tolist() == [[0, 0, 0, 0, 1]]
    with pytest.raises(TableInputError, match="city"):
        encode_table(pd.DataFrame({"age": [1.0], "const": [1.0]}), prep)


def test_at_most_fifty_categories_the_most_frequent_first():
    frame = pd.DataFrame({"f:c": [f"v{i:03d}" for i in range(120)] + ["v119"] * 3})
    prep = fit_table_encoding(frame, {"c": "string"})
    cats = prep["categories"]["c"]
    assert len(cats) == 50 and cats[0] == "v119" and cats[1] == "v000"
    assert n_features(prep) == 51
    assert encode_table(pd.DataFrame({"c": ["v110"]}), prep)[0, -1] == 1  # rare -> other


def test_resnet_small_is_resnet20_and_takes_any_size_from_8():
    model = create_model("resnet_small", num_classes=10, in_channels=3, image_size=(32, 32))
    assert 0.26e6 < model.parameter_count() < 0.28e6
    convs = [
        m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)
    ]
    assert len(convs) == 19  # + the head = 20 weighted layers
    small = create_model(
        "resnet_small", num_classes=2, in_channels=1, image_size=(8, 12), blocks_per_stage=1
    ).eval()
    assert small(torch.randn(2, 1, 8, 12)).shape == (2, 2)
    with pytest.raises(ModelParamError, match="at least 8x8"):
        create_model("resnet_small", num_classes=2, in_channels=1, image_size=(7, 7))
    with pytest.raises(ModelParamError, match="3 positive stage widths"):
        create_model("resnet_small", num_classes=2, in_channels=1, image_size=8, widths=[8])
