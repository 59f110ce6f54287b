"""Saliency maps of images for `dlw explain`: Grad-CAM (Selvaraju et al., 2017) on the last
convolution of the network (found generically: its last nn.Conv2d module), its positive part
upsampled bilinearly to the image and laid over it. A network without a convolution (an MLP on
pixels) gets integrated gradients (Sundararajan et al., 2017) from the normalisation mean (a
black-to-grey image of 0 after normalising), the absolute attribution summed over channels.
Each map is scaled to [0, 1] by its own maximum; it explains the predicted class."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.evaluate.explain_figures import caption, item_path, save_item
from dlworkflow.plots import new_figure

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.models.meta import ModelMeta
    from dlworkflow.workspace import Workspace

IG_STEPS = 32


def last_conv(model: Any) -> tuple[str, Any] | None:
    """(name, module) of the network's last nn.Conv2d, or None."""
    from torch import nn

    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    return convs[-1] if convs else None


def saliency(model: Any, x: Any, targets: list[int]) -> tuple[np.ndarray, str]:
    """(N, H, W) maps in [0, 1] for normalised images x (N, C, H, W) and the method's name."""
    import torch
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam

    model.eval()
    found = last_conv(model)
    if found is not None:
        name, layer = found
        cam = LayerGradCam(model, layer).attribute(x, target=targets, relu_attributions=True)
        maps = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="bilinear")
        maps = maps[:, 0].clamp(min=0)
        method = f"Grad-CAM on the last convolution ({name})"
    else:
        ig = IntegratedGradients(model)
        attr = ig.attribute(x, baselines=torch.zeros_like(x), target=targets, n_steps=IG_STEPS)
        maps = attr.abs().sum(1)
        method = "integrated gradients (no convolution in the network; baseline: the mean image)"
    maps = maps.detach().float().numpy()
    peak = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, 1, 1)
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0), method


def image_batch(project: Workspace, meta: ModelMeta, rows: pd.DataFrame) -> tuple[Any, np.ndarray]:
    """(normalised float tensor, uint8 pixels (N, C, H, W)) of manifest rows, as in training."""
    from dlworkflow.models.predict import image_normaliser, image_pixels

    pixels = np.ascontiguousarray(image_pixels(project, rows, meta))
    return image_normaliser(meta)(pixels), pixels


def explain_images(
    project: Workspace,
    model: Any,
    meta: ModelMeta,
    rows: pd.DataFrame,
    items: list[dict[str, Any]],
    folder: Path,
    *,
    split: str,
) -> dict[str, Any]:
    """Draw each item's image and its saliency map; the method's name for the index."""
    if not items:
        return {"method": "Grad-CAM" if last_conv(model) else "integrated gradients"}
    classes = list(meta["classes"])
    x, pixels = image_batch(project, meta, rows.iloc[[i["row"] for i in items]])
    maps, method = saliency(model, x, [classes.index(i["predicted"]) for i in items])
    for k, (item, image, heat) in enumerate(zip(items, pixels, maps)):
        draw(project, item, image, heat, item_path(folder, item, k))
    return {"method": method, "target": "the predicted class"}


def draw(
    project: Workspace, item: dict[str, Any], image: np.ndarray, heat: np.ndarray, path: Path
) -> None:
    """The image, and the image under its saliency map (jet, half transparent)."""
    fig = new_figure(3.6, 2.1)
    shown = image[0] if image.shape[0] == 1 else np.moveaxis(image[:3], 0, -1)
    cmap = "gray" if image.shape[0] == 1 else None
    for j, ax in enumerate(fig.subplots(1, 2)):
        ax.imshow(shown, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
        if j:
            ax.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="bilinear")
        ax.set_axis_off()
    fig.suptitle(f"{item['sample_id']}: {caption(item)}", fontsize=8)
    save_item(project, fig, path, item)
