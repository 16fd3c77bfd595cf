"""Speech enhancers (family "enhancer") and their training losses (family "enh_loss").

An enhancer maps noisy waveforms (B, S) to enhanced waveforms (B, S) of the same length at
the same sample rate. ``Enhancer.enhance`` checks the sample rate and returns an
``EnhancedAudio``; ``forward`` is the tensor-to-tensor map used in training.

References without training:
- identity: the noisy input itself (the baseline every improvement is measured from);
- spectral subtraction: Boll, "Suppression of acoustic noise in speech using spectral
  subtraction", IEEE TASSP 1979;
- Wiener filter with the decision-directed a-priori SNR: Ephraim & Malah, IEEE TASSP 1984,
  eq. 51, with the Wiener gain ξ/(1+ξ) (Scalart & Vieira Filho, ICASSP 1996).
Both estimate the noise spectrum from the quietest frames of each utterance (a stand-in
for the speech-pause detector the papers assume).

Learned:
- mask: a T-F masking network (dilated convolutions over the log-magnitude STFT, sigmoid
  mask, noisy phase);
- convtasnet: torchaudio's Conv-TasNet (Luo & Mesgarani, IEEE/ACM TASLP 2019) with one
  source, in a small configuration.

Losses: L1 on the waveform, negative SI-SDR (Le Roux et al., ICASSP 2019), multi-resolution
STFT loss (Yamamoto et al., Parallel WaveGAN, ICASSP 2020, eqs. 2-4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from bench.registry import register


@dataclass
class EnhancedAudio:
    """Output of ``Enhancer.enhance``: waveforms (B, S) at ``sample_rate``."""

    wave: torch.Tensor
    sample_rate: int


def stft_sizes(sample_rate: int, window_ms: float = 32.0, hop_ms: float = 8.0) -> tuple[int, int]:
    """(n_fft, hop) for a window and hop in ms (512 and 128 at 16 kHz)."""
    return round(sample_rate * window_ms / 1000), round(sample_rate * hop_ms / 1000)


class Enhancer(nn.Module):
    """Base class: subclasses implement ``_enhance((B, S)) -> (B, S)``.

    Built with ``registry.build("enhancer", name, sample_rate=...)``: the task's audio
    rate is the one context an enhancer takes. A learned enhancer is one with trainable
    parameters; the task trains it with the row's ``enh_loss``."""

    requires: ClassVar[tuple[str, ...]] = ("sample_rate",)
    window: torch.Tensor  # Hann window of the STFT helpers, a buffer registered in __init__

    def __init__(self, sample_rate: int = 16000) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.n_fft, self.hop = stft_sizes(sample_rate)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        if noisy.ndim != 2:
            raise ValueError(
                f"{type(self).__name__} takes (batch, samples), got {tuple(noisy.shape)}"
            )
        out = self._enhance(noisy)
        if out.shape != noisy.shape:
            raise RuntimeError(
                f"{type(self).__name__} changed the shape {noisy.shape} -> {out.shape}"
            )
        return out

    def enhance(self, noisy: torch.Tensor, sample_rate: int) -> EnhancedAudio:
        """Enhance (S,) or (B, S) audio at ``sample_rate``; output has the input's shape."""
        if sample_rate != self.sample_rate:
            raise ValueError(
                f"{type(self).__name__} was built for {self.sample_rate} Hz audio, got "
                f"{sample_rate} Hz; build it with sample_rate={sample_rate} or resample"
            )
        wave = noisy.unsqueeze(0) if noisy.ndim == 1 else noisy
        out = self(wave)
        return EnhancedAudio(out[0] if noisy.ndim == 1 else out, sample_rate)

    def _enhance(self, noisy: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # STFT helpers shared by the spectral methods: 32 ms Hann window, 8 ms hop
    def stft(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stft(x, self.n_fft, self.hop, window=self.window, return_complex=True)

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        return torch.istft(spec, self.n_fft, self.hop, window=self.window, length=length)


def quietest_frames(power: torch.Tensor, fraction: float) -> torch.Tensor:
    """Mask (B, 1, T) of the ``fraction`` of frames with the least energy in each utterance
    (at least one): where a speech-pause detector would look for noise alone."""
    energy = power.sum(1)  # (B, T)
    k = max(1, round(fraction * energy.shape[1]))
    threshold = energy.kthvalue(k, dim=1, keepdim=True).values
    return (energy <= threshold).unsqueeze(1)


def noise_estimate(spec_stat: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``spec_stat`` (B, F, T) over the frames of ``mask`` (B, 1, T) -> (B, F, 1)."""
    m = mask.to(spec_stat.dtype)
    return (spec_stat * m).sum(-1, keepdim=True) / m.sum(-1, keepdim=True)


@register("enhancer", "identity")
class Identity(Enhancer):
    """The noisy input unchanged: every improvement is measured against it."""

    def _enhance(self, noisy: torch.Tensor) -> torch.Tensor:
        return noisy.clone()


@register("enhancer", "specsub")
class SpectralSubtraction(Enhancer):
    """Magnitude spectral subtraction (Boll 1979, section III) with its three refinements:
    magnitude averaging over ``average_frames`` frames, half-wave rectification, residual
    noise reduction (min over adjacent frames where below the max noise residual), and
    ``nonspeech_db`` attenuation of frames judged to hold no speech."""

    def __init__(
        self,
        sample_rate: int = 16000,
        noise_fraction: float = 0.1,
        average_frames: int = 3,
        nonspeech_threshold_db: float = -12.0,
        nonspeech_db: float = -30.0,
    ) -> None:
        super().__init__(sample_rate)
        self.noise_fraction = noise_fraction
        self.average_frames = average_frames
        self.nonspeech_threshold_db = nonspeech_threshold_db
        self.nonspeech_gain = 10 ** (nonspeech_db / 20)

    def _enhance(self, noisy: torch.Tensor) -> torch.Tensor:
        spec = self.stft(noisy)  # (B, F, T)
        mag = spec.abs()
        noise_frames = quietest_frames(mag**2, self.noise_fraction)
        mu = noise_estimate(mag, noise_frames)  # noise magnitude bias μ(e^jω)
        k = self.average_frames  # Boll eq. (6): local magnitude averaging
        avg = F.avg_pool1d(mag.flatten(0, 1).unsqueeze(1), k, 1, k // 2, count_include_pad=False)
        avg = avg.view_as(mag)
        s = (avg - mu).clamp_min(0)  # Boll eq. (5) with half-wave rectification, eq. (7)
        # residual noise reduction, Boll eq. (8): below the max noise residual, take the
        # minimum over the adjacent frames
        max_residual = ((mag - mu) * noise_frames).amax(-1, keepdim=True)
        padded = F.pad(s, (1, 1), mode="replicate")
        local_min = torch.minimum(
            torch.minimum(padded[..., :-2], padded[..., 1:-1]), padded[..., 2:]
        )
        s = torch.where(s < max_residual, local_min, s)
        # additional attenuation in non-speech frames, Boll eq. (9)
        t_db = 20 * torch.log10((s / mu.clamp_min(1e-10)).mean(1, keepdim=True).clamp_min(1e-10))
        s = torch.where(t_db < self.nonspeech_threshold_db, self.nonspeech_gain * mag, s)
        return self.istft(torch.polar(s, spec.angle()), noisy.shape[-1])


@register("enhancer", "wiener")
class WienerFilter(Enhancer):
    """Wiener gain G = ξ/(1+ξ) with the decision-directed a-priori SNR (Ephraim & Malah
    1984, eq. 51): ξ_t = α |Ŝ_{t-1}|²/λ_d + (1-α) max(γ_t - 1, 0), γ_t = |Y_t|²/λ_d,
    floored at ``xi_min_db`` (Cappé 1994: the floor limits musical noise)."""

    def __init__(
        self,
        sample_rate: int = 16000,
        noise_fraction: float = 0.1,
        alpha: float = 0.98,
        xi_min_db: float = -15.0,
    ) -> None:
        super().__init__(sample_rate)
        self.noise_fraction = noise_fraction
        self.alpha = alpha
        self.xi_min = 10 ** (xi_min_db / 10)

    def _enhance(self, noisy: torch.Tensor) -> torch.Tensor:
        spec = self.stft(noisy)
        power = spec.abs() ** 2  # (B, F, T)
        lam = noise_estimate(power, quietest_frames(power, self.noise_fraction)).clamp_min(1e-12)
        gamma = power / lam  # a-posteriori SNR
        gains = torch.empty_like(power)
        prev = torch.zeros_like(power[..., 0])  # |Ŝ_{t-1}|² / λ_d
        for t in range(power.shape[-1]):
            ml = (gamma[..., t] - 1).clamp_min(0)
            xi = (self.alpha * prev + (1 - self.alpha) * ml).clamp_min(self.xi_min)
            g = xi / (1 + xi)
            gains[..., t] = g
            prev = g**2 * gamma[..., t]
        return self.istft(gains * spec, noisy.shape[-1])


@register("enhancer", "mask")
class MaskNet(Enhancer):
    """T-F masking network: log-magnitude STFT -> dilated 1-D convolutions over time
    (frequency bins as channels, residual, receptive field ~0.5 s) -> sigmoid mask on the
    noisy STFT, resynthesised with the noisy phase (torchaudio Spectrogram transforms).

    Convolutions rather than a GRU: a recurrent net runs thousands of tiny per-frame ops,
    which on a busy multi-core CPU spend most of their time waiting at thread barriers.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        channels: int = 256,
        dilations: tuple[int, ...] = (1, 2, 4, 8, 16),
    ) -> None:
        super().__init__(sample_rate)
        self.spectrogram = torchaudio.transforms.Spectrogram(
            self.n_fft, hop_length=self.hop, power=None
        )
        self.inverse = torchaudio.transforms.InverseSpectrogram(self.n_fft, hop_length=self.hop)
        bins = self.n_fft // 2 + 1
        self.norm = nn.GroupNorm(1, bins)  # over frequency and time of each utterance
        self.inp = nn.Conv1d(bins, channels, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Conv1d(channels, channels, 3, padding=d, dilation=d) for d in dilations
        )
        self.out = nn.Conv1d(channels, bins, 1)

    def _enhance(self, noisy: torch.Tensor) -> torch.Tensor:
        spec = self.spectrogram(noisy)  # (B, F, T) complex
        h = torch.relu(self.inp(self.norm(torch.log(spec.abs() + 1e-4))))
        for block in self.blocks:
            h = h + torch.relu(block(h))
        mask = torch.sigmoid(self.out(h))
        return self.inverse(spec * mask, noisy.shape[-1])


@register("enhancer", "convtasnet")
class ConvTasNetEnhancer(Enhancer):
    """Conv-TasNet with one output source, small: N=512 filters of L=256 samples (16 ms at
    16 kHz, hop 8 ms), B=64, H=128, P=3, X=4 blocks, R=2 repeats (the paper's best: N=512,
    L=16 at 8 kHz, B=128, H=512, X=8, R=3). The long filters are our choice for CPU
    budgets: 125 frames/s instead of 1000, and in quick-suite training runs (120 updates)
    they beat the noisy input on PESQ-WB where L=32 and L=64 did not.

    ``identity_init`` (our choice, not the paper's): the encoder and decoder start as a
    windowed-DCT analysis/synthesis pair (filters ±√hann·DCT-II, the decoder's halved as
    torchaudio's encoder is linear, and 50 %-overlap-add of hann reconstructs exactly) and
    the mask starts near 1,
    so the untrained network passes the noisy input through. A few hundred CPU updates
    then improve on the input instead of first learning to reconstruct it. With
    ``learn_filterbank=False`` (the default, for the same reason) that filterbank stays
    fixed and only the separator (the TCN mask generator) learns, as in the fixed-
    filterbank variants of Pariente et al. (ICASSP 2020).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        enc_kernel_size: int = 256,
        enc_num_feats: int = 512,
        msk_num_feats: int = 64,
        msk_num_hidden_feats: int = 128,
        msk_num_layers: int = 4,
        msk_num_stacks: int = 2,
        identity_init: bool = True,
        learn_filterbank: bool = False,
    ) -> None:
        super().__init__(sample_rate)
        self.net = torchaudio.models.ConvTasNet(
            num_sources=1,
            enc_kernel_size=enc_kernel_size,
            enc_num_feats=enc_num_feats,
            msk_kernel_size=3,
            msk_num_feats=msk_num_feats,
            msk_num_hidden_feats=msk_num_hidden_feats,
            msk_num_layers=msk_num_layers,
            msk_num_stacks=msk_num_stacks,
            msk_activate="sigmoid",
        )
        if identity_init:
            self._identity_init(enc_kernel_size, enc_num_feats)
        for p in (*self.net.encoder.parameters(), *self.net.decoder.parameters()):
            p.requires_grad_(learn_filterbank)  # False: a fixed filterbank (Pariente et al. 2020)

    @torch.no_grad()
    def _identity_init(self, length: int, feats: int) -> None:
        if feats % 2 or feats // 2 > length or length % 2:
            raise ValueError("identity_init needs an even L and N/2 <= L filters")
        n = torch.arange(length, dtype=torch.float64)
        k = torch.arange(feats // 2, dtype=torch.float64).unsqueeze(1)
        dct = torch.cos(torch.pi * (n + 0.5) * k / length) * (2 / length) ** 0.5  # DCT-II
        dct[0] /= 2**0.5  # orthonormal
        root_hann = torch.sqrt(torch.hann_window(length, periodic=True, dtype=torch.float64))
        basis = dct * root_hann  # (N/2, L)
        filters = torch.cat([basis, -basis]).unsqueeze(1).float()  # (N, 1, L)
        self.net.encoder.weight.copy_(filters)
        self.net.decoder.weight.copy_(filters / 2)  # each coefficient arrives twice (±)
        out = self.net.mask_generator.output_conv
        out.weight.mul_(0.1)
        out.bias.fill_(4.0)  # sigmoid(4) = 0.98

    def _enhance(self, noisy: torch.Tensor) -> torch.Tensor:
        return self.net(noisy.unsqueeze(1))[:, 0]


# ----------------------------------------------------------------------------- losses


def si_sdr_batch(estimate: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """SI-SDR in dB per row of (B, S) (Le Roux et al. 2019, eq. 4), zero-meaned."""
    target = target - target.mean(-1, keepdim=True)
    estimate = estimate - estimate.mean(-1, keepdim=True)
    alpha = (estimate * target).sum(-1, keepdim=True) / (target.pow(2).sum(-1, keepdim=True) + eps)
    projection = alpha * target
    noise = estimate - projection
    return 10 * torch.log10((projection.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


@register("enh_loss", "l1")
class L1Waveform(nn.Module):
    """Mean absolute error between the enhanced and the clean waveform."""

    def forward(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(estimate, target)


@register("enh_loss", "neg_sisdr")
class NegativeSISDR(nn.Module):
    """−SI-SDR (dB), averaged over the batch (Le Roux et al. 2019)."""

    def forward(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return -si_sdr_batch(estimate, target).mean()


@register("enh_loss", "mrstft")
class MultiResolutionSTFT(nn.Module):
    """Multi-resolution STFT loss (Yamamoto et al. 2020, eqs. 2-4): the mean over
    resolutions of spectral convergence ||S|-|Ŝ||_F / ||S||_F plus the mean absolute
    log-magnitude difference; resolutions (FFT, hop, window) as in the paper."""

    def __init__(
        self,
        resolutions: tuple[tuple[int, int, int], ...] = (
            (1024, 120, 600),
            (2048, 240, 1200),
            (512, 50, 240),
        ),
    ) -> None:
        super().__init__()
        self.resolutions = resolutions
        for k, (_, _, win) in enumerate(resolutions):
            self.register_buffer(f"window{k}", torch.hann_window(win), persistent=False)

    def forward(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = estimate.new_zeros(())
        for k, (n_fft, hop, win) in enumerate(self.resolutions):
            window = getattr(self, f"window{k}")
            est = torch.stft(estimate, n_fft, hop, win, window, return_complex=True).abs()
            ref = torch.stft(target, n_fft, hop, win, window, return_complex=True).abs()
            est, ref = est.clamp_min(1e-7), ref.clamp_min(1e-7)
            convergence = torch.linalg.norm(ref - est) / torch.linalg.norm(ref)  # eq. 3
            log_mag = F.l1_loss(torch.log(est), torch.log(ref))  # eq. 4
            total = total + convergence + log_mag
        return total / len(self.resolutions)
