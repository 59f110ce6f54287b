"""store.series (content-addressed series, NaN-padded batches, gap filling) and store.clips."""

from __future__ import annotations

import numpy as np
import pytest

from dlworkflow.datasets.sonic_pi import sonic_pi_clips
from dlworkflow.store.audio import AudioDecodeError
from dlworkflow.store.clips import ClipSettings, decode_clip, zero_padded
from dlworkflow.store.series import (
    fill_gaps,
    lengths_of,
    nan_padded,
    read_series,
    unpad,
    write_series,
)


def test_a_series_is_written_once_under_its_hash_and_read_back_exactly(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    path, key = write_series(tmp_path, a)
    again, key2 = write_series(tmp_path, a.copy())
    assert path == again and key == key2 and path.name == f"{key}.npy"
    assert np.array_equal(read_series(path), a)
    _, other = write_series(tmp_path, a.reshape(4, 3))  # same bytes, other shape
    assert other != key


def test_nan_padding_carries_each_length_and_unpads_to_the_originals():
    series = [np.ones((2, 5)), np.zeros((2, 3)), np.full((2, 7), -1.0)]
    batch = nan_padded(series)
    assert batch.shape == (3, 2, 7)
    assert lengths_of(batch).tolist() == [5, 3, 7]
    assert [s.shape[1] for s in unpad(batch)] == [5, 3, 7]
    assert np.array_equal(unpad(batch)[1], np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError):
        nan_padded(series, length=4)
    with pytest.raises(ValueError):
        nan_padded([np.ones((2, 3)), np.ones((3, 3))])


def test_short_gaps_are_interpolated_and_long_ones_or_edges_give_a_reason():
    a = np.array([[0.0, np.nan, np.nan, 3.0, 4.0]])
    filled, problem = fill_gaps(a, max_gap=2)
    assert problem is None and np.allclose(filled, [[0, 1, 2, 3, 4]])
    _, problem = fill_gaps(a, max_gap=1)
    assert problem is not None and "run of 2 missing steps" in problem and "max_gap: 1" in problem
    _, problem = fill_gaps(np.array([[np.nan, 1.0, 2.0]]), max_gap=5)
    assert problem is not None and "start or end" in problem
    _, problem = fill_gaps(np.array([[1.0, np.inf]]), max_gap=5)
    assert problem == "infinite value in the series"


def test_a_clip_decodes_to_the_fixed_length_at_the_configured_rate():
    path, _label = sonic_pi_clips()[0]
    settings = ClipSettings(sample_rate=8_000, duration=0.5)
    wave = decode_clip(path, settings)
    assert wave.dtype == np.float32 and wave.shape == (4_000,) and np.abs(wave).max() > 0
    longer = decode_clip(path, ClipSettings(sample_rate=8_000, duration=0.5, policy="max"))
    assert len(longer) <= 4_000
    assert zero_padded([wave[:10], wave[:4]]).shape == (2, 10)
    assert ClipSettings.from_dict(settings.as_dict()) == settings
    with pytest.raises(AudioDecodeError):
        decode_clip(b"RIFF\x00\x00\x00\x00WAVEjunk", settings)
