"""The enhancement task's configuration and its scales (bench.tasks.enhance): training
budget, crops, and how many test and valid mixtures are scored."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SCALE_CONFIGS", "EnhanceConfig"]


@dataclass
class EnhanceConfig:
    corpus: str = "quick"  # embedded corpus scale (ignored with --data voicebank=PATH)
    steps: int = 300  # training updates of the learned enhancers
    batch_size: int = 8
    crop_seconds: float = 1.0  # random (noisy, clean) crops for training
    lr: float = 3e-4  # Adam peak, linear warm-up then linear decay (1e-3 hurt PESQ)
    warmup_fraction: float = 0.05
    grad_clip: float = 5.0
    test_utterances: int = 30  # scored test mixtures, balanced over noise types (0: all)
    pesq_workers: int = 0  # processes of the PESQ pool (0: all cores)
    # valid mixtures a learned cell is scored on (PESQ-WB, what tuning selects on; 0: none)
    valid_utterances: int = 0

    def validate(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.crop_seconds <= 0 or self.lr <= 0:
            raise ValueError(f"invalid enhancement config: {self}")
        if min(self.test_utterances, self.pesq_workers, self.valid_utterances) < 0:
            raise ValueError(
                f"test_utterances, valid_utterances and pesq_workers must be >= 0: {self}"
            )


SCALE_CONFIGS = {
    "quick": {"corpus": "quick", "steps": 120, "batch_size": 4, "test_utterances": 24},
    # default: 200 test mixtures (of 488), balanced over the six noise types (issue 21: 60
    # mixtures detected only large PESQ differences)
    # 48 valid mixtures score the tuning trials (a quarter of the test set's PESQ time)
    "default": {
        "corpus": "default",
        "steps": 400,
        "batch_size": 8,
        "test_utterances": 200,
        "valid_utterances": 48,
    },
    "full": {
        "corpus": "full",
        "steps": 20000,
        "batch_size": 16,
        "test_utterances": 0,
        "valid_utterances": 200,
    },
}
