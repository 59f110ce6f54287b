"""The one tokenizer of every text model (all-MiniLM-L6-v2's WordPiece). The implementation is
torch-free and lives in `dlworkflow.preprocess.text`; this module re-exports it.

    ids = tokenize(["a fine film", "dull"], max_len=128)   # int64 (2, L), L <= 128, pad id 0
"""

from dlworkflow.preprocess.text import (  # noqa: F401  (re-exported)
    MAX_LEN_LIMIT,
    PAD_ID,
    TOKENIZER,
    VOCAB_SIZE,
    TokenizerUnavailableError,
    _tokenizer,
    check_max_len,
    tokenize,
)
