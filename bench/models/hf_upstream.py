"""Your own pretrained upstream (the SUPERB idea): a local transformers checkpoint, frozen,
with a learnable softmax-weighted sum of its hidden layers ("frontend" ``hf``).

SUPERB (Yang et al., Interspeech 2021, §3) freezes the upstream and lets each downstream
learn one weight per hidden layer: the weights start at zero (a uniform softmax) and train
with the downstream; s3prl's ``Featurizer`` can layer-normalise each layer first. Here the
upstream is any audio encoder ``transformers.AutoModel`` loads from a folder (wav2vec2,
HuBERT, WavLM, data2vec-audio); nothing is downloaded. Its input is prepared by the folder's
feature extractor when it has one (``preprocessor_config.json``), else normalised to zero
mean and unit variance per utterance as wav2vec2's extractor does, and resampled to the
model's rate. Being frozen, the upstream's hidden states (all layers, on the CPU) are
computed once per utterance and cached; only the weighted sum is applied each step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from bench.context import RunContext
from bench.models.frontends import Frontend
from bench.models.speaker_encoder import Encoder
from bench.registry import register

__all__ = [
    "HFUpstream",
    "LayerWeightedSum",
    "WeightedSumEncoder",
    "check_upstream",
    "flatten_layers",
    "upstream_identity",
]

CORPUS_RATE = 16000  # the embedded corpora's sampling rate
NO_UPSTREAM = "frontend=hf needs --upstream PATH (a local transformers checkpoint folder)"
FIX = "give a folder written by save_pretrained() of a transformers audio encoder"


def _transformers() -> Any:
    """transformers, imported only when an hf upstream is used (the ``hf`` extra)."""
    try:
        import transformers
    except ImportError as e:  # pragma: no cover - transformers is in the dev extra
        raise ImportError("frontend=hf needs transformers: pip install speechbench[hf]") from e
    return transformers


def check_upstream(upstream: str) -> Path:
    """The checkpoint folder ``upstream``, checked: it exists and holds a config.json."""
    if not upstream:
        raise ValueError(NO_UPSTREAM)
    path = Path(upstream).expanduser()
    if not path.is_dir():
        raise ValueError(f"--upstream {upstream}: no such folder; {FIX}")
    if not (path / "config.json").is_file():
        raise ValueError(f"--upstream {upstream}: the folder has no config.json; {FIX}")
    return path.resolve()


def upstream_identity(upstream: str) -> str:
    """sha256 over the names and contents of the checkpoint folder's files: a changed
    checkpoint is a different cell (cached per file name, size and mtime)."""
    path = check_upstream(upstream)
    files = sorted(p for p in path.iterdir() if p.is_file())
    return _content_hash(tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))


@cache
def _content_hash(files: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _, _ in files:
        digest.update(Path(name).name.encode() + b"\0")
        with open(name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def load_upstream(upstream: str) -> tuple[Any, Any]:
    """(frozen model in eval mode, feature extractor or None) from the local folder only."""
    path = check_upstream(upstream)
    transformers = _transformers()
    transformers.logging.set_verbosity_error()  # no download or loading chatter
    transformers.utils.logging.disable_progress_bar()
    try:
        model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True)
        extractor = None
        if (path / "preprocessor_config.json").is_file():
            extractor = transformers.AutoFeatureExtractor.from_pretrained(
                str(path), local_files_only=True
            )
    except Exception as e:  # transformers raises many kinds; all mean "cannot load it"
        raise ValueError(
            f"--upstream {upstream}: transformers could not load it "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); {FIX}"
        ) from e
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, extractor


class LayerWeightedSum(nn.Module):
    """(..., L, D) -> (..., D): softmax(w)-weighted sum of the layers, w = 0 at the start
    (SUPERB §3), each layer optionally layer-normalised first (s3prl's ``Featurizer``)."""

    def __init__(self, layers: int, layer_norm: bool = False) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(layers))
        self.layer_norm = layer_norm

    def forward(self, stack: torch.Tensor) -> torch.Tensor:
        if self.layer_norm:
            stack = F.layer_norm(stack, stack.shape[-1:])
        return torch.einsum("...ld,l->...d", stack, F.softmax(self.weights, -1))

    def layer_weights(self) -> list[float]:
        """The learned weight of each layer, summing to 1."""
        return F.softmax(self.weights.detach(), -1).tolist()


def flatten_layers(stack: torch.Tensor) -> torch.Tensor:
    """(L, T, D) -> (T, L * D): frames first, so crops and padding treat it as features."""
    return stack.transpose(0, 1).reshape(stack.shape[1], -1)


class WeightedSumEncoder(nn.Module):
    """The small encoder of bench.models.speaker_encoder over the learned weighted sum of an
    upstream's layers; its input is (B, T, L * D) (``flatten_layers``)."""

    def __init__(self, layers: int, dim: int, channels: int, embedding_dim: int) -> None:
        super().__init__()
        self.layers, self.dim = layers, dim
        self.featurize = LayerWeightedSum(layers)
        self.encoder = Encoder(dim, channels, embedding_dim)

    def _sum(self, x: torch.Tensor) -> torch.Tensor:
        return self.featurize(x.reshape(*x.shape[:-1], self.layers, self.dim))

    @torch.no_grad()
    def normalise_with(self, feats: list[torch.Tensor]) -> WeightedSumEncoder:
        """Input normalisation from the training frames' weighted sum at the start."""
        self.encoder.normalise_with([self._sum(f) for f in feats])
        return self

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.encoder(self._sum(x), lengths)


_CACHE: dict[tuple[str, str], torch.Tensor] = {}  # (upstream identity, audio hash) -> (L,T,D)


@register("frontend", "hf")
class HFUpstream(Frontend):
    """A local transformers checkpoint (``--upstream PATH``), frozen; its hidden states
    (L, T, D) per utterance go to a learnable weighted sum in the downstream."""

    requires = ("upstream", "ctx")

    def __init__(self, upstream: str, ctx: RunContext) -> None:
        self.identity = upstream_identity(upstream)
        self.model, self.extractor = load_upstream(upstream)
        self.device = ctx.device
        self.model.to(self.device)
        rate = getattr(self.extractor, "sampling_rate", None)
        self.sample_rate = int(rate) if rate else CORPUS_RATE
        probe = self.batch_states([np.zeros(CORPUS_RATE // 2, np.float32)])  # 0.5 s silence
        self.layers, self.dim = probe.shape[1], probe.shape[3]  # all layers, as returned
        if any(k[0] != self.identity for k in _CACHE):  # keep one upstream's states at most
            _CACHE.clear()

    def _inputs(self, waves: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """The model's inputs for equal-length waves at the corpus rate."""
        x = torch.from_numpy(np.stack(waves).astype(np.float32))
        if self.sample_rate != CORPUS_RATE:
            x = torchaudio.functional.resample(x, CORPUS_RATE, self.sample_rate)
        if self.extractor is not None:
            out = self.extractor(
                list(x.numpy()), sampling_rate=self.sample_rate, return_tensors="pt"
            )
            return {k: v for k, v in out.items() if k != "attention_mask"}
        x = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, keepdim=True) + 1e-7)
        return {"input_values": x}

    @torch.no_grad()
    def batch_states(self, waves: Sequence[np.ndarray | torch.Tensor]) -> torch.Tensor:
        """(B, L, T, D) hidden states of equal-length waveforms (16 kHz), not cached."""
        arrays = [w.numpy() if isinstance(w, torch.Tensor) else np.asarray(w) for w in waves]
        inputs = {k: v.to(self.device) for k, v in self._inputs(arrays).items()}
        out = self.model(**inputs, output_hidden_states=True)
        return torch.stack(out.hidden_states, 1).float().cpu()

    def hidden_states(self, audio: Sequence[np.ndarray | torch.Tensor]) -> list[torch.Tensor]:
        """(L, T, D) hidden states per utterance (16 kHz), each computed once and cached."""
        out = []
        for wav in audio:
            array = wav.numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
            key = (self.identity, hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest())
            if key not in _CACHE:
                _CACHE[key] = self.batch_states([array])[0]
            out.append(_CACHE[key])
        return out

    def probe_features(self, audio: Sequence[np.ndarray]) -> list[torch.Tensor]:
        return self.hidden_states(audio)

    def spec_augment(self, stack: torch.Tensor, augmentation, rng: np.random.Generator):
        """A feature-domain augmentation of (T, L, D) with the same draws for every layer
        (the random state is replayed per layer; each layer is filled with its own mean)."""
        state = rng.bit_generator.state
        layers = []
        for layer in range(stack.shape[1]):
            rng.bit_generator.state = state
            layers.append(augmentation(stack[:, layer], rng))
        return torch.stack(layers, 1)


def hf_grid(
    rows: list[dict[str, str]],
    baseline: dict[str, str],
    fixed: dict[str, str] | None = None,
    frontends: tuple[str, ...] | None = None,
    task: str = "this task",
) -> list[dict[str, str]]:
    """A task's grid made sensible for ``frontend=hf`` rows (``Task.grid`` puts a new front
    end in the place of every trained row's): on hf rows the ``fixed`` values (e.g. no
    quantizer or objective: the upstream is not pre-trained here), duplicates dropped, and
    each hf row's baseline (the row with the baseline's values) added where missing, so
    every hf row has its pair. A front end outside ``frontends`` (the ones the task can
    use) is an input error before anything runs."""
    for r in rows:
        if frontends is not None and r.get("frontend") not in frontends:
            raise ValueError(
                f"front end {r.get('frontend')!r} does not fit {task}; use --methods "
                f"frontend=NAME with one of: {', '.join(frontends)} (or leave {task} out)"
            )
    out = [{**r, **(fixed or {})} if r.get("frontend") == "hf" else r for r in rows]
    pairs = [{**r, **baseline} for r in out if r.get("frontend") == "hf"]
    unique = dict.fromkeys(tuple(r.items()) for r in out + pairs)
    return [dict(t) for t in unique]


def upstream_data_identity(identity: Any, config: dict[str, Any]) -> Any:
    """A task's data identity, with the upstream's (``upstream_identity``) when the config
    names one: a changed checkpoint is different data."""
    upstream = config.get("upstream") or ""
    return identity if not upstream else {"data": identity, "upstream": upstream_identity(upstream)}


def train_batch(
    upstream: HFUpstream, waves: list[torch.Tensor], augmentation: Any, rng: np.random.Generator
) -> torch.Tensor:
    """(B, T, L * D) features of equal-length training crops, already augmented in the wave
    domain: the upstream runs on them (augmented audio cannot be cached), then a feature-
    domain augmentation is applied to each crop's layers with shared draws."""
    states = upstream.batch_states(waves).transpose(1, 2)  # (B, T, L, D)
    if getattr(augmentation, "domain", "wave") == "spec":
        states = torch.stack([upstream.spec_augment(s, augmentation, rng) for s in states])
    return states.reshape(*states.shape[:2], -1)
