"""Tabular input: feature columns -> one float32 vector per sample, the same at train and test.
The implementation is torch-free and lives in `dlworkflow.preprocess.tabular`; this module
re-exports it.

    prep = fit_table_encoding(train_frame, {"age": "number", "city": "string"})
    x = encode_table(any_frame, prep)        # float32 (N, n_features(prep))
"""

from dlworkflow.preprocess.tabular import (  # noqa: F401  (re-exported)
    FEATURE_PREFIX,
    MAX_CATEGORIES,
    TableInputError,
    encode_table,
    feature_names,
    fit_table_encoding,
    n_features,
)
