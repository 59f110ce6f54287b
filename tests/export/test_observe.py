"""What the monitor sees of a prediction (runtime/observe.py): the same record for the
server, the reference and --inputs; an embedding that is the model's own features, projected."""

from __future__ import annotations

import numpy as np

from dlworkflow.runtime import observe
from dlworkflow.runtime import versions as V
from dlworkflow.runtime.bundle import load_bundle
from dlworkflow.store import load_split


def _bundle(digits):
    if V.champion_folder(digits.root) is None:  # this file run alone
        digits.test()
        digits.export()
    return load_bundle(V.champion_folder(digits.root), threads=1)


def test_records_carry_summaries_probabilities_and_a_fixed_embedding(digits):
    bundle = _bundle(digits)
    rows = load_split(digits, "val").iloc[:12]
    values = observe.rows_to_values(bundle, rows)
    x, summaries = observe.prepare(bundle, values)
    probs, emb = observe.infer(bundle, x)
    assert probs.shape == (12, 10) and emb.shape == (12, observe.EMBED_DIMS)
    np.testing.assert_allclose(probs, bundle.predict_proba(x), atol=1e-6)
    # the same inputs give the same embedding (a fixed projection), different ones differ
    again = observe.infer(bundle, x)[1]
    np.testing.assert_array_equal(emb, again)
    assert np.linalg.norm(emb[0] - emb[1]) > 1e-3
    lines = observe.records(bundle, summaries, probs, emb, ids=[f"r{i}" for i in range(12)])
    first = lines[0]
    assert first["id"] == "r0" and first["model_version"] == bundle.version
    assert first["label"] == bundle.classes[int(probs[0].argmax())]
    assert first["input"]["width"] == 16 and first["input"]["height"] == 16
    assert np.isclose(first["input"]["mean"], x[0].mean(), atol=1e-4)
    assert np.isclose(first["input"]["channel_means"][0], x[0, 0].mean(), atol=1e-4)
    assert len(first["emb"]) == observe.EMBED_DIMS and first["request_items"] == 12


def test_inverted_images_move_the_summaries_and_the_embedding(digits):
    bundle = _bundle(digits)
    import io

    from PIL import Image, ImageOps

    rows = load_split(digits, "val").iloc[:40]
    values = observe.rows_to_values(bundle, rows)
    inverted = []
    for data in values:
        buffer = io.BytesIO()
        ImageOps.invert(Image.open(io.BytesIO(data)).convert("L")).save(buffer, "PNG")
        inverted.append(buffer.getvalue())
    x, s = observe.prepare(bundle, values)
    xi, si = observe.prepare(bundle, inverted)
    e, ei = observe.infer(bundle, x)[1], observe.infer(bundle, xi)[1]
    assert np.mean([a["mean"] for a in si]) > np.mean([a["mean"] for a in s]) + 0.5
    within = np.linalg.norm(e[:20].mean(0) - e[20:].mean(0))
    between = np.linalg.norm(e.mean(0) - ei.mean(0))
    assert between > 3 * within


def test_text_summaries_count_unknown_word_pieces():
    ids = np.array([[101, 7592, 100, 100, 102, 0, 0]])
    (summary,) = observe.text_summaries(["hello ☃ ☃"], ids)
    assert summary == {"kind": "text", "chars": 9, "words": 3, "tokens": 5, "unk": round(2 / 3, 5)}
