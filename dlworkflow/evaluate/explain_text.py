"""Token attributions of texts for `dlw explain`. Every text model takes the MiniLM WordPiece
ids of dlworkflow.models.tokenize ([CLS] tokens [SEP], 0 is padding) and looks them up in a word
embedding (nn.Embedding over the whole vocabulary: `embedding` of bilstm and transformer,
`encoder.embeddings.word_embeddings` of minilm_classifier). Each token's attribution to the
predicted class is layer integrated gradients on that embedding, from a baseline text of the
same length whose words are all [UNK] ([CLS], [SEP] kept: the attention mask stays the same),
summed over the embedding's dimensions. A model without such an embedding (a user's network)
gets occlusion instead: each token replaced by [UNK] in turn, the fall of the predicted class's
probability. The figure shows the tokens coloured by attribution (red: for the predicted
class, blue: against), scaled by the largest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.evaluate.explain_figures import (
    attribution_colour,
    caption,
    item_path,
    save_item,
)
from dlworkflow.plots import new_figure

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.models.meta import ModelMeta
    from dlworkflow.workspace import Workspace

IG_STEPS = 32
CLS_ID, SEP_ID = 101, 102
LINE_CHARS = 84  # characters per line of the figure (monospace)
CHAR_PT = 0.602 * 9  # the advance of a 9 pt DejaVu Sans Mono character, in points


def word_embedding(model: Any) -> tuple[str, Any] | None:
    """(name, module) of the network's embedding of the whole WordPiece vocabulary, or None."""
    from torch import nn

    from dlworkflow.preprocess.text import VOCAB_SIZE

    for name, module in model.named_modules():
        if isinstance(module, nn.Embedding) and module.num_embeddings == VOCAB_SIZE:
            return name, module
    return None


def token_scores(model: Any, ids: Any, target: int) -> tuple[np.ndarray, str]:
    """Attribution of each token of ids (1, L) to class `target`, and the method's name."""
    import torch

    from dlworkflow.preprocess.text import PAD_ID, UNK_ID

    model.eval()
    keep = (ids == CLS_ID) | (ids == SEP_ID) | (ids == PAD_ID)
    found = word_embedding(model)
    if found is not None:
        from captum.attr import LayerIntegratedGradients

        name, layer = found
        baseline = torch.where(keep, ids, torch.full_like(ids, UNK_ID))
        attr = LayerIntegratedGradients(model, layer).attribute(
            ids, baselines=baseline, target=target, n_steps=IG_STEPS, internal_batch_size=IG_STEPS
        )
        scores = attr.sum(-1)[0].detach().double().numpy()
        return scores, f"layer integrated gradients on the word embedding ({name})"
    with torch.inference_mode():
        base = torch.softmax(model(ids), 1)[0, target]
        variants = ids.repeat(ids.shape[1], 1)
        positions = torch.arange(ids.shape[1])
        variants[positions, positions] = torch.where(keep[0], ids[0], UNK_ID)
        scores = (base - torch.softmax(model(variants), 1)[:, target]).double().numpy()
    return scores, "occlusion (each token replaced by [UNK]; no word embedding found)"


def explain_texts(
    project: Workspace,
    model: Any,
    meta: ModelMeta,
    rows: pd.DataFrame,
    items: list[dict[str, Any]],
    folder: Path,
    *,
    split: str,
) -> dict[str, Any]:
    """Each item's tokens with their attributions (item["tokens"]: [token, attribution]) and
    its figure; the method's name for the index."""
    import torch
    from tokenizers import Tokenizer

    from dlworkflow.models import tokenize
    from dlworkflow.preprocess.text import tokenizer_file

    vocab = Tokenizer.from_file(str(tokenizer_file()))
    classes = list(meta["classes"])
    max_len = int(meta["preprocessing"]["max_len"])
    method = "layer integrated gradients" if word_embedding(model) else "occlusion"
    for k, item in enumerate(items):
        text = rows.iloc[item["row"]]["text"]
        ids = torch.from_numpy(tokenize(["" if text is None else str(text)], max_len))
        scores, method = token_scores(model, ids, classes.index(item["predicted"]))
        item["tokens"] = [
            [vocab.id_to_token(int(i)), round(float(s), 5)]
            for i, s in zip(ids[0].tolist(), scores)
            if i not in (0, CLS_ID, SEP_ID)
        ]
        draw(project, item, item_path(folder, item, k))
    return {"method": method, "target": "the predicted class"}


def draw(project: Workspace, item: dict[str, Any], path: Path) -> None:
    """The tokens, wrapped, each on a background coloured by its attribution."""
    tokens = item["tokens"]
    peak = max((abs(s) for _, s in tokens), default=0.0) or 1.0
    placed, line, col = [], 0, 0
    for token, score in tokens:
        word = token[2:] if token.startswith("##") else token
        gap = 0 if token.startswith("##") or col == 0 else 1
        if col + gap + len(word) > LINE_CHARS and col:
            line, col, gap = line + 1, 0, 0
        placed.append((col + gap, line, word, score / peak))
        col += gap + len(word)
    width = 7.2
    fig = new_figure(width, 0.75 + 0.24 * (line + 1))
    ax = fig.add_axes((0.01, 0.0, 0.98, 1.0))
    chars = width * 72 * 0.98 / CHAR_PT
    rows = line + 3
    ax.set_xlim(0, chars)
    ax.set_ylim(rows, 0)
    ax.set_axis_off()
    ax.text(0, 0.9, f"{item['sample_id']}: {caption(item)}", fontsize=8)
    ax.text(0, 1.8, "red: for the predicted class, blue: against", fontsize=7, color="0.4")
    for x, y, word, value in placed:
        ax.text(
            x,
            y + 2.8,
            word,
            family="monospace",
            fontsize=9,
            bbox={"facecolor": attribution_colour(value), "edgecolor": "none", "pad": 0.4},
        )
    save_item(project, fig, path, item, tight=False)
