"""Training inputs on the device: resident when they fit, else streamed from a memory map.

    data = TensorData(x, y, mean=[0.13], std=[0.31])   # x: uint8 (N, C, H, W), memmap or tensor
    placed = data.place(torch.device("cuda"))           # whole tensor on the GPU if it fits
    for xb, yb in placed.batches(order, 64): ...        # float, normalised on the device

Only uint8 inputs (images) are converted and normalised, per batch, on the device:
``((x / 255) - mean) / std`` (the exact arithmetic `dlw test` uses). Any other dtype (token
ids as int64, tabular features as float32) goes to the model as it is.

Resident or streamed, the batches hold the same values in the same order: the order comes
from the caller (a seeded permutation), so results do not depend on where the data lives.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

CPU_RESIDENT_BYTES = 2 << 30  # CPU: load a memory-mapped split into RAM up to 2 GiB
GPU_RESIDENT_FRACTION = 0.25  # GPU: keep a split on the device up to 25% of free memory
PREFETCH = 2  # streamed batches read ahead by the background thread


@dataclass
class TensorData:
    """One split: inputs `x` (tensor or numpy array / memmap, first axis = samples) and int64
    class indices `y` (or float soft targets). mean/std: per channel, for uint8 x only."""

    x: torch.Tensor | np.ndarray
    y: torch.Tensor
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def nbytes(self) -> int:
        x = self.x
        return int(x.nbytes) if isinstance(x, np.ndarray) else x.numel() * x.element_size()

    def place(self, device: torch.device, *, budget: int | None = None) -> DeviceData:
        """Resident on `device` when x fits in `budget` bytes (None: the default budget for
        the device), else streamed from host memory / the memory map."""
        budget = resident_budget(device) if budget is None else budget
        y = torch.as_tensor(self.y).to(device)
        if self.nbytes <= budget:
            return DeviceData(_host_tensor(self.x).to(device), y, self, device, resident=True)
        return DeviceData(self.x, y, self, device, resident=False)


def resident_budget(device: torch.device) -> int:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * GPU_RESIDENT_FRACTION)
    return CPU_RESIDENT_BYTES


def _host_tensor(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    return torch.from_numpy(np.array(x))  # a memmap is read into RAM (a writable copy)


class DeviceData:
    """A split placed for training: `batches(order, size)` yields prepared (x, y) on the
    device, by slicing the resident tensor or by reading ahead from the memory map."""

    def __init__(
        self, x: Any, y: torch.Tensor, source: TensorData, device: torch.device, *, resident: bool
    ) -> None:
        self.x, self.y, self.device, self.resident = x, y, device, resident
        self.convert = _is_uint8(source.x)
        shape = (1, -1) + (1,) * (len(source.x.shape) - 2)
        self.mean = self.std = None
        if self.convert and source.mean is not None:
            self.mean = torch.tensor(list(source.mean), dtype=torch.float32, device=device).view(
                shape
            )
            self.std = torch.tensor(
                list(source.std or [1.0] * len(source.mean)), dtype=torch.float32, device=device
            ).view(shape)

    def __len__(self) -> int:
        return len(self.y)

    def prepare(self, xb: torch.Tensor) -> torch.Tensor:
        """uint8 -> float32 ((x / 255) - mean) / std on the device; other dtypes unchanged."""
        if not self.convert:
            return xb
        xb = xb.float().div_(255.0)
        if self.mean is not None and self.std is not None:  # set together
            xb = xb.sub_(self.mean).div_(self.std)
        return xb

    def batches(
        self, order: torch.Tensor | None, batch_size: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(x, y) batches in `order` (sample indices, a permutation or a rank's share of
        one; None: 0..N-1)."""
        n = len(self.y) if order is None else len(order)
        if self.resident:
            x, y = self.x, self.y
            if order is None:
                for i in range(0, n, batch_size):
                    yield self.prepare(x[i : i + batch_size]), y[i : i + batch_size]
                return
            order = order.to(self.device)
            for i in range(0, n, batch_size):
                idx = order[i : i + batch_size]
                yield self.prepare(x[idx]), y[idx]
            return
        chunks: list[slice | torch.Tensor] = [
            slice(i, i + batch_size) if order is None else order[i : i + batch_size]
            for i in range(0, n, batch_size)
        ]
        for chunk, xb in zip(chunks, _read_ahead(self.x, chunks, pin=self.device.type == "cuda")):
            yb = self.y[chunk.to(self.device)] if isinstance(chunk, torch.Tensor) else self.y[chunk]
            yield self.prepare(xb.to(self.device, non_blocking=True)), yb


def _is_uint8(x: torch.Tensor | np.ndarray) -> bool:
    return x.dtype == np.uint8 if isinstance(x, np.ndarray) else x.dtype == torch.uint8


def _read(x: Any, idx: slice | torch.Tensor) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x[idx]
    rows = idx if isinstance(idx, slice) else idx.numpy()
    return torch.from_numpy(np.array(x[rows]))  # a writable copy of the rows


_END = object()


def _read_ahead(
    x: Any, chunks: list[Any], *, pin: bool, depth: int = PREFETCH
) -> Iterator[torch.Tensor]:
    """Read the chunks' rows in a background thread, `depth` batches ahead (pinned for a
    GPU); re-raises the reader's error in the caller; stops the reader when abandoned."""
    buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for idx in chunks:
                batch = _read(x, idx)
                if not put(batch.pin_memory() if pin else batch):
                    return
            put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)

    thread = threading.Thread(target=reader, name="dlw-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
