"""The ingest's worker pool never fails an ingest: a broken pool's chunks are decoded in this
process, and a main module that workers cannot re-run (a script read from stdin) means no pool."""

import sys
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from types import SimpleNamespace

import numpy as np
from PIL import Image

from dlworkflow.data import parallel_read
from dlworkflow.data.image_decode import decode_chunk


def test_a_broken_pool_chunk_is_decoded_here(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(path)
    broken: Future = Future()
    broken.set_exception(BrokenProcessPool("a worker died"))
    chunk = parallel_read._Chunk(broken, [str(path)], (10**6, 10**4))
    here = decode_chunk([str(path)], 10**6, 10**4)[0]
    assert chunk.result()[0].content_hash == here.content_hash

    class Dead:
        def submit(self, *_args):
            raise BrokenProcessPool("gone")

    done = parallel_read._submit(Dead(), [str(path)], (10**6, 10**4))
    assert done.result()[0].content_hash == chunk.result()[0].content_hash


def test_no_pool_when_the_main_module_cannot_be_re_run(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "__main__", SimpleNamespace(__file__="<stdin>"))
    assert not parallel_read._workers_can_start()
    script = tmp_path / "run.py"
    script.write_text("")
    monkeypatch.setitem(sys.modules, "__main__", SimpleNamespace(__file__=str(script)))
    assert parallel_read._workers_can_start()
    monkeypatch.setitem(sys.modules, "__main__", SimpleNamespace())  # a notebook, python -c
    assert parallel_read._workers_can_start()


def test_auto_workers_start_a_pool_only_where_the_main_module_is_safe(monkeypatch, tmp_path):
    script = tmp_path / "train.py"  # a user's script: maybe without a __main__ guard
    script.write_text("")
    monkeypatch.setitem(sys.modules, "__main__", SimpleNamespace(__file__=str(script)))
    monkeypatch.setattr(sys, "argv", [str(script)])
    assert parallel_read.resolve_workers("auto") == 1
    assert parallel_read.resolve_workers(2) == 2  # a number opts in
    monkeypatch.setattr(sys, "argv", ["/venv/bin/dlw", "ingest"])
    assert parallel_read.resolve_workers("auto") >= 1 and parallel_read._main_is_safe()
