"""Torch-free preprocessing shared by training, the exported runtime and the server: the text
tokenizer, the tabular encoding and image pixel normalisation. One implementation:
`dlworkflow.models` re-exports the tokenizer and table encoding from here.

    ids = tokenize(texts, max_len)            # int64 (N, L)
    x = encode_table(frame, prep)             # float32 (N, F)
    x = normalise_pixels(uint8_nchw, mean, std)  # float32 (N, C, H, W)
"""

from dlworkflow.preprocess.image import normalise_pixels
from dlworkflow.preprocess.tabular import (
    TableInputError,
    encode_table,
    feature_names,
    fit_table_encoding,
    n_features,
)
from dlworkflow.preprocess.text import (
    MAX_LEN_LIMIT,
    PAD_ID,
    TOKENIZER,
    VOCAB_SIZE,
    TokenizerUnavailableError,
    check_max_len,
    tokenize,
)

__all__ = [
    "MAX_LEN_LIMIT",
    "PAD_ID",
    "TOKENIZER",
    "VOCAB_SIZE",
    "TableInputError",
    "TokenizerUnavailableError",
    "check_max_len",
    "encode_table",
    "feature_names",
    "fit_table_encoding",
    "n_features",
    "normalise_pixels",
    "tokenize",
]
