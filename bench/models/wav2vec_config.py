"""Sizes of the wav2vec-style network (bench/models/wav2vec.py): its config and presets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Wav2VecConfig:
    # feature encoder: (kernel, stride) per conv layer; the paper's 7 layers give 20 ms frames
    conv_layers: tuple[tuple[int, int], ...] = (
        (10, 5),
        (3, 2),
        (3, 2),
        (3, 2),
        (3, 2),
        (2, 2),
        (2, 2),
    )
    conv_channels: int = 512
    # "conv": the waveform encoder above (GPU and full runs); "logmel": 80 log-mel energies
    # stacked to 20 ms, no parameters (the CPU suites: the small waveform encoder cannot learn)
    stem: str = "conv"
    dim: int = 768  # Transformer width
    layers: int = 12
    heads: int = 12
    ffn_dim: int = 3072
    pos_conv_kernel: int = (
        128  # convolutional relative positional embedding (paper: 128, 16 groups)
    )
    pos_conv_groups: int = 16
    code_dim: int = 256  # dimension of quantized targets and of the projected context
    # fairseq's pre-training dropouts (wav2vec 2.0 base); fine-tuning sets its own
    dropout: float = 0.1  # on each residual branch and after the positional convolution
    attention_dropout: float = 0.1  # on the attention weights
    activation_dropout: float = 0.0  # inside the feed-forward network, after GELU
    dropout_input: float = 0.1  # on the projected features before masking (fairseq's)
    dropout_features: float = 0.1  # on the quantizer's input (fairseq's)
    feature_penalty: float = 10.0  # weight of mean(z^2) of a learned encoder (fairseq's)
    mask_prob: float = 0.065  # p: proportion of steps that start a masked span
    mask_length: int = 10  # M
    num_negatives: int = 100  # K distractors
    diversity_weight: float = 0.1  # alpha
    tau_decay: float = 0.999995  # Gumbel temperature decay per update (paper, for 400k updates)
    feature_grad_mult: float = 0.1  # scales the feature encoder's gradient (fairseq's default)
    data2vec_top_k: int = 8  # teacher layers averaged into data2vec targets
    # EMA decay of the data2vec teacher: linear from tau0 to tau_end over tau_steps updates
    # (paper: 0.999 -> 0.9999 over 30k updates; short CPU runs need a faster teacher)
    ema_tau0: float = 0.999
    ema_tau_end: float = 0.9999
    ema_tau_steps: int = 30000

    def validate(self) -> None:
        if self.dim % self.heads or self.dim % self.pos_conv_groups:
            raise ValueError("dim must be divisible by heads and by pos_conv_groups")
        if self.stem not in STEMS:
            raise ValueError(f"unknown stem {self.stem!r}; known: {', '.join(STEMS)}")


STEMS = ("conv", "logmel")


SIZES: dict[str, dict] = {
    # for unit tests: runs in milliseconds
    "tiny": dict(
        conv_channels=16,
        dim=32,
        layers=2,
        heads=2,
        ffn_dim=64,
        pos_conv_kernel=8,
        pos_conv_groups=4,
        code_dim=16,
        num_negatives=10,
        data2vec_top_k=2,
        ema_tau0=0.98,
        ema_tau_end=0.998,
        ema_tau_steps=200,
    ),
    # for the quick/default suites on CPU (about 0.7M parameters)
    "small": dict(
        conv_channels=64,
        dim=128,
        layers=3,
        heads=4,
        ffn_dim=256,
        pos_conv_kernel=32,
        pos_conv_groups=8,
        code_dim=64,
        num_negatives=30,
        data2vec_top_k=2,
        ema_tau0=0.98,
        ema_tau_end=0.998,
        ema_tau_steps=500,
    ),
    # wav2vec 2.0 BASE dimensions, for GPU users
    "base": dict(),
}


def config_for(size: str, **overrides) -> Wav2VecConfig:
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; known: {', '.join(SIZES)}")
    config = Wav2VecConfig(**{**SIZES[size], **overrides})
    config.validate()
    return config
