"""A user's own network in the registry's contract.

    # nets.py, next to dlworkflow.yaml            # dlworkflow.yaml
    def tiny(num_outputs, input_spec, width=32):  # model:
        return nn.Sequential(...)                 #   name: "nets:tiny"
                                                  #   params: {width: 64}

`factory(num_outputs, input_spec, **params)` returns an `nn.Module` whose forward maps a batch
(images float (N, C, H, W), text int64 token ids (N, L), tables float (N, F): `input_spec`
says which, with its shape) to (N, num_outputs) logits. Its keyword parameters are
`model.params`. A factory with a `pretrained` parameter loads weights of its own when it is
true: such a network can be fine-tuned (model.transfer: finetune or gradual); any other trains
from scratch. The head, for discriminative learning rates and the gradual schedule, is the
module's `head` attribute when it has one, else its last child with parameters.

Before training, `check_network` runs a forward pass on a dummy batch and an ONNX export dry
run; a layer the exporter cannot handle is named.
"""

from __future__ import annotations

import inspect
import io
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dlworkflow.model_refs import FactoryError, load_factory, target_of
from dlworkflow.models.base import Classifier

FACTORY_ARGS = ("num_outputs", "input_spec")


@dataclass(frozen=True)
class InputSpec:
    """What the network receives: the modality and the shape of one sample."""

    modality: str  # "image" | "text" | "tabular"
    in_channels: int | None = None
    image_size: tuple[int, int] | None = None
    n_features: int | None = None
    vocab_size: int | None = None
    max_len: int = 64

    @property
    def sample_shape(self) -> tuple[int, ...]:
        if self.modality == "image":
            assert self.in_channels is not None and self.image_size is not None
            return (self.in_channels, *self.image_size)
        if self.modality == "text":
            return (self.max_len,)
        assert self.n_features is not None
        return (self.n_features,)

    @classmethod
    def of(cls, inputs: dict[str, Any]) -> InputSpec:
        """From create_model's input arguments: in_channels + image_size, n_features, or
        (text) vocab_size."""
        if "in_channels" in inputs:
            h, w = inputs["image_size"]
            return cls("image", in_channels=int(inputs["in_channels"]), image_size=(int(h), int(w)))
        if "n_features" in inputs:
            return cls("tabular", n_features=int(inputs["n_features"]))
        return cls("text", vocab_size=int(inputs.get("vocab_size") or 0))

    def example(self, batch: int = 2) -> torch.Tensor:
        """A dummy batch of this input (zeros; token id 1 for text)."""
        if self.modality == "text":
            return torch.ones((batch, *self.sample_shape), dtype=torch.int64)
        return torch.zeros((batch, *self.sample_shape), dtype=torch.float32)


class UserNetwork(Classifier):
    """The user's module; forward is its own. No features() split: the frozen strategy and
    the ONNX features output are not available."""

    exports_features = False

    def __init__(self, net: nn.Module, num_outputs: int, input_spec: InputSpec) -> None:
        super().__init__()
        self.net = net
        self._outputs = num_outputs
        self.input_spec = input_spec  # what the network was built for (check_network's input)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @property
    def num_classes(self) -> int:
        return self._outputs

    @property
    def head(self) -> nn.Module:  # type: ignore[override]
        named = getattr(self.net, "head", None)
        if isinstance(named, nn.Module) and any(True for _ in named.parameters()):
            return named
        with_params = [m for m in self.net.children() if any(True for _ in m.parameters())]
        return with_params[-1] if with_params else self.net

    def reset_head(self, num_classes: int) -> None:
        raise FactoryError(
            "A user network's head cannot be replaced by dlworkflow.",
            fix="build it with the right num_outputs in the factory",
        )

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        head = list(self.head.parameters())
        ids = {id(p) for p in head}
        backbone = [p for p in self.parameters() if id(p) not in ids]
        return {"backbone": backbone, "head": head}


def factory_defaults(factory: Any) -> dict[str, Any]:
    """The factory's own keyword parameters (model.params) and their defaults."""
    out = {}
    for p in inspect.signature(factory).parameters.values():
        if p.name in FACTORY_ARGS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out[p.name] = None if p.default is inspect.Parameter.empty else p.default
    return out


def build_user_network(name: str, *, num_classes: int, **given: Any) -> UserNetwork:
    """Call the factory of `name` with the data's InputSpec; wrap what it returns."""
    inputs: dict[str, Any] = {
        k: given.pop(k)
        for k in ("in_channels", "image_size", "n_features", "vocab_size")
        if k in given
    }
    spec = InputSpec.of(inputs)
    factory = load_factory(name)
    try:
        net = factory(num_outputs=num_classes, input_spec=spec, **given)
    except TypeError as exc:
        raise FactoryError(
            f"The factory {target_of(name)} could not be called: {exc}",
            expected="factory(num_outputs, input_spec, **model.params)",
            received=f"model.params {given!r}",
            fix="give the factory the parameters num_outputs and input_spec, and keyword "
            "parameters matching model.params",
        ) from None
    if not isinstance(net, nn.Module):
        raise FactoryError(
            f"The factory {target_of(name)} returned a {type(net).__name__}, not a network.",
            expected="a torch.nn.Module",
            received=type(net).__name__,
            fix="return the nn.Module itself (not a class, tuple or optimizer)",
        )
    return UserNetwork(net, num_classes, spec)


def check_network(model: UserNetwork) -> None:
    """A forward pass on a dummy batch of 2 of its input_spec, then an ONNX export dry run (in
    memory): a FactoryError that says what is wrong, and for ONNX which layer, before any
    training."""
    from dlworkflow.models.onnx_export import OPSET

    num_outputs = model.num_classes
    x = model.input_spec.example(2)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            try:
                out = model(x)
            except Exception as exc:  # noqa: BLE001  (the user's forward raised)
                raise FactoryError(
                    "The network's forward pass failed on a dummy batch.",
                    expected=f"input {tuple(x.shape)} {x.dtype} -> ({2}, {num_outputs})",
                    received=f"{type(exc).__name__}: {str(exc).splitlines()[0]}",
                    fix="make forward accept the input described by input_spec",
                ) from None
            if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_outputs):
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out)
                raise FactoryError(
                    "The network's output has the wrong shape.",
                    expected=f"(batch, num_outputs) = (2, {num_outputs})",
                    received=str(shape),
                    fix="end the network with num_outputs logits",
                )
        failure = _onnx_failure(model, x, OPSET)
        if failure:
            layer, reason = (
                _failing_layer(model.net, x, OPSET)  # named as the user names
                or ("(the whole network)", failure)
            )
            raise FactoryError(
                f"The network cannot be exported to ONNX: layer {layer} fails.",
                expected=f"operators of ONNX opset {OPSET} (serving runs the ONNX model)",
                received=reason,
                fix=f"replace {layer} with layers ONNX can express (or compute it another way)",
            )
    finally:
        model.train(was_training)


def _onnx_failure(module: nn.Module, x: Any, opset: int) -> str | None:
    args = x if isinstance(x, tuple) else (x,)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                args,
                io.BytesIO(),  # type: ignore[arg-type]
                opset_version=opset,
                dynamo=False,
            )
    except Exception as exc:  # noqa: BLE001  (the exporter raises many unrelated types)
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def _failing_layer(model: nn.Module, x: torch.Tensor, opset: int) -> tuple[str, str] | None:
    """The first leaf layer (in forward order) that cannot be exported on its own."""
    seen: list[tuple[str, nn.Module, tuple[Any, ...]]] = []
    hooks = []
    for name, module in model.named_modules():
        if name and not any(True for _ in module.children()):
            hooks.append(
                module.register_forward_hook(
                    lambda m, args, out, name=name: seen.append((name, m, args))
                )
            )
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    for name, module, args in seen:
        tensors = tuple(a for a in args if isinstance(a, torch.Tensor))
        if len(tensors) != len(args):
            continue
        reason = _onnx_failure(module, tensors, opset)
        if reason:
            return f"{name!r} ({type(module).__name__})", reason
    return None
