"""Networks given as Python objects: `project.train(model=net)`.

The object is kept in this process under a name ("live:<module>.<Class>#<n>") that the train
run records as its model.name; every build (training, then `test` and `export` reloading the
trained weights) starts from a copy of it, so the object itself is never changed and a second
`train` starts from the same initial weights. Another process cannot rebuild such a network:
for the CLI, write a factory (`model.name: "module:function"`, models/user.py).
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from torch import nn

from dlworkflow.model_refs import FactoryError

PREFIX = "live:"
_LIVE: dict[str, nn.Module] = {}
_COUNTER = itertools.count(1)


def is_live(name: str) -> bool:
    return name.startswith(PREFIX)


def adopt(module: Any) -> str:
    """Keep `module` for this process; its model.name."""
    if not isinstance(module, nn.Module):
        raise FactoryError(
            f"train(model=...) takes a torch.nn.Module, not a {type(module).__name__}.",
            expected="an nn.Module instance",
            received=type(module).__name__,
            fix="pass the network object (net = MyNet(); project.train(model=net))",
        )
    for name, kept in _LIVE.items():
        if kept is module:
            return name
    name = f"{PREFIX}{type(module).__module__}.{type(module).__qualname__}#{next(_COUNTER)}"
    _LIVE[name] = module
    return name


def build(name: str, *, num_classes: int, **inputs: Any) -> nn.Module:
    """A copy of the kept network, in the Classifier contract."""
    from dlworkflow.models.base import Classifier
    from dlworkflow.models.user import InputSpec, UserNetwork

    module = _LIVE.get(name)
    if module is None:
        raise FactoryError(
            f"The network {name!r} was given to project.train(model=...) in another Python "
            "process; it exists only there.",
            expected="the same Python session that trained it",
            received="a new process (the CLI, or a restarted notebook)",
            fix="train it again in this session, or write a factory function and set "
            'model.name: "module:function" to use it from anywhere',
        )
    net = copy.deepcopy(module)
    return (
        net if isinstance(net, Classifier) else UserNetwork(net, num_classes, InputSpec.of(inputs))
    )
