"""Data access behind load/save: the manifest, the split, image tensors and the sealed test set.

Step packages read and write project data only through here. The sealed test set has its own
module (`dlworkflow.store.sealed`) that only the evaluate step may import (import-linter).
"""

from dlworkflow.store.images import ImageDecodeError, decode_image, image_tensor
from dlworkflow.store.manifest import (
    DatasetInfo,
    dataset_version,
    read_dataset_info,
    read_manifest,
    read_quarantine,
    write_dataset,
)
from dlworkflow.store.privacy import (
    PrivacyError,
    check_privacy_gate,
    read_privacy,
    read_privacy_findings,
)
from dlworkflow.store.splits import (
    SplitInfo,
    load_split,
    read_assignments,
    read_split_info,
    write_split,
)
from dlworkflow.store.trained import read_trained_pointer, write_trained_pointer

__all__ = [
    "PrivacyError",
    "check_privacy_gate",
    "read_privacy",
    "read_privacy_findings",
    "DatasetInfo",
    "ImageDecodeError",
    "SplitInfo",
    "dataset_version",
    "decode_image",
    "image_tensor",
    "load_split",
    "read_assignments",
    "read_dataset_info",
    "read_manifest",
    "read_quarantine",
    "read_split_info",
    "read_trained_pointer",
    "write_dataset",
    "write_split",
    "write_trained_pointer",
]
