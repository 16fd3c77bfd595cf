"""The G2P task's configuration and its scales (bench.tasks.g2p): data split, model size,
training budget, decoding, and the distillation teacher."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from bench.config import build_config
from bench.models import g2p_teacher
from bench.models.g2p import ModelConfig

__all__ = ["SCALE_CONFIGS", "G2PConfig"]


@dataclass
class G2PConfig:
    words: int | None = 3000  # words drawn from CMUdict before the split (None: all)
    valid_fraction: float = 0.05
    test_fraction: float = 0.1
    split_seed: int = 0  # fixes the split for every method and seed
    keep_stress: bool = False  # keep ARPAbet stress digits (AH0) in the targets
    emb_dim: int = 64
    hidden: int = 128
    layers: int = 2  # Transformer decoder layers
    heads: int = 4
    ff_dim: int = 256
    dropout: float = 0.1
    steps: int = 400  # updates
    batch_size: int = 64  # (word, pronunciation) pairs per update
    lr: float = 2e-3  # Adam, constant after a short warm-up, linear decay over the last 30%
    eval_every: int = 100  # updates between validation PER points
    valid_words: int = 300  # valid words decoded for the validation curve (<= the split)
    beam_width: int = 4
    max_position: int = 20  # error-by-position curve length (output positions)
    # weight of professor forcing's C_f term; Lamb et al. add it with weight 1, which swamps
    # the NLL in runs this short (quick GRU: test PER 58% at 1.0, 28% at 0.1)
    professor_weight: float = 0.1
    # the row's forcing parameters over its defaults (tuning trials set them; the professor's
    # adversarial_weight here replaces professor_weight)
    forcing_params: dict[str, float] = field(default_factory=dict)
    threads: int = 1  # torch CPU threads in a cell: these small step loops run faster on one
    # the distillation teacher (word_kd, sequence_kd): the student's network this wide
    # (>= hidden), trained with teacher forcing for teacher_steps updates (0: 2 x steps)
    teacher_hidden: int = 256
    teacher_steps: int = 0

    def validate(self) -> None:
        if min(self.steps, self.batch_size, self.eval_every, self.beam_width, self.threads) < 1:
            raise ValueError(f"invalid g2p config: {self}")
        if self.teacher_steps < 0:
            raise ValueError(f"teacher_steps={self.teacher_steps} must be >= 1 (0: 2 x steps)")
        g2p_teacher.teacher_model_config(self.model("gru"), self.teacher_hidden)  # >= student

    def model(self, arch: str) -> ModelConfig:
        names = {f.name for f in fields(ModelConfig)} - {"arch"}
        return build_config(ModelConfig, {n: getattr(self, n) for n in names}, arch=arch)


SCALE_CONFIGS: dict[str, dict[str, Any]] = {
    "quick": {"words": 2000, "steps": 100, "eval_every": 50, "valid_words": 100},  # <= 2 min
    "default": {  # the suite's 3 GRU rows, tuned, and Transformer teacher forcing: 27 + 9 cells
        "words": 20000,
        "test_fraction": 0.1,  # 2,000 test words: detects ~1 PER point over items
        "steps": 300,
        "eval_every": 100,
        "valid_words": 200,
    },
    "full": {
        "words": None,
        "steps": 30000,
        "eval_every": 2000,
        "valid_words": 2000,
        "hidden": 256,
        "emb_dim": 128,
        "ff_dim": 512,
        "batch_size": 128,
        "beam_width": 8,
        "teacher_hidden": 512,
    },
}
