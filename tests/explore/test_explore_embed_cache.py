"""Explore embeds every image once: the embedding cache (by content hash) means a re-ingest that
adds samples embeds only those; the map, the label-issue search and the near-duplicate search
cover every sample (no cap)."""

from __future__ import annotations

import numpy as np

from conftest import make_digits_folder
from dlworkflow.explore import embedder as quick
from dlworkflow.explore import explore
from dlworkflow.explore.embed_cache import EmbeddingCache
from dlworkflow.project import Project


def test_the_cache_returns_what_was_added_by_content_hash_and_skips_a_damaged_shard(tmp_path):
    cache = EmbeddingCache(tmp_path, key="k", dim=3)
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
    cache.add(["a", "b"], vectors, dataset_version="v1", embedder="e")
    cache.add(["", "c"], vectors + 1, dataset_version="v2", embedder="e")  # "": never kept
    hits = cache.lookup(["c", "x", "a", "", "b"])
    assert hits.missing.tolist() == [1, 3]
    np.testing.assert_array_equal(hits.vectors[[2, 4]], vectors)
    np.testing.assert_array_equal(hits.vectors[0], vectors[1] + 1)
    shards = sorted(p.name for p in (tmp_path / "embeddings-k").glob("*.npy"))
    assert [s[:3] for s in shards] == ["v1-", "v2-"]  # named after the dataset version
    (tmp_path / "embeddings-k" / shards[0]).write_bytes(b"damaged")
    assert cache.lookup(["a", "c"]).missing.tolist() == [0]  # embedded again, not fatal


def test_a_re_ingest_that_adds_samples_embeds_only_those_and_every_sample_is_checked(
    tmp_path, monkeypatch
):
    embedded: list[int] = []
    original = quick.QuickEmbedder.embed

    def counting(self, pixels, **kwargs):
        embedded.append(len(pixels))
        return original(self, pixels, **kwargs)

    monkeypatch.setattr(quick.QuickEmbedder, "embed", counting)
    folder = make_digits_folder(tmp_path / "images", n_per_class=10, classes=(0, 1, 2))
    project = Project.init(tmp_path / "proj")
    project.ingest(str(folder), progress=False)
    first = explore(project, progress=False)
    assert embedded == [30]
    assert (first.embedded, first.label_checked, first.near_searched) == (30, 30, 30)
    assert first.embedded_cached == 0

    make_digits_folder(folder, n_per_class=14, classes=(0, 1, 2))  # 12 new images
    project.ingest(str(folder), progress=False)
    again = explore(project, progress=False)
    assert embedded == [30, 12]  # only the new samples
    assert (again.n_samples, again.embedded, again.embedded_cached) == (42, 42, 30)
    assert (again.label_checked, again.near_searched) == (42, 42)
    summary = project.ledger.latest("explore").summary
    assert (summary["embedded"], summary["near_searched"]) == (42, 42)
