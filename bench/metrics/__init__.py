"""Metrics: one pure function per metric, and one table of their units and directions.

Records store each metric in its natural unit (fractions, not percent); the report and
the regression check read ``METRICS`` to scale, label and orient them. A metric missing
from the table is shown as-is with no direction, and a test keeps every task's table
metrics listed here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    """How to read one metric: direction, display unit and scale, and its tolerance."""

    higher_is_better: bool
    unit: str  # display unit, after multiplying by `scale`
    scale: float = 1.0
    tolerance: float = 0.0  # in display units: smaller changes never count as regressions
    description: str = ""
    ranked: bool = True  # False for informational values (no "best", never a regression)

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


METRICS: dict[str, MetricSpec] = {
    # classification and calibration (bench.metrics.calibration)
    "accuracy": MetricSpec(True, "%", 100, 0.5, "top-1 accuracy"),
    "nll": MetricSpec(False, "nats", 1, 0.01, "negative log-likelihood of the true class"),
    "brier": MetricSpec(False, "", 1, 0.005, "multiclass Brier score (0..2)"),
    "ece": MetricSpec(False, "%", 100, 0.5, "expected calibration error, 15 equal-width bins"),
    "mce": MetricSpec(False, "%", 100, 2.0, "maximum calibration error over non-empty bins"),
    "adaptive_ece": MetricSpec(False, "%", 100, 0.5, "ECE with 15 equal-mass bins"),
    "auroc": MetricSpec(True, "%", 100, 1.0, "AUROC of confidence for correct vs wrong"),
    "aurc": MetricSpec(False, "‰", 1000, 1.0, "area under the risk-coverage curve"),
    "eaurc": MetricSpec(False, "‰", 1000, 1.0, "AURC minus the oracle's AURC"),
    "temperature": MetricSpec(False, "", 1, 0.0, "fitted temperature", ranked=False),
    # speech recognition and probing (bench.metrics.asr)
    "per": MetricSpec(False, "%", 100, 1.0, "phoneme error rate, corpus-level"),
    "dev_per": MetricSpec(False, "%", 100, 1.0, "phoneme error rate on the dev speakers"),
    "test_per": MetricSpec(False, "%", 100, 1.0, "phoneme error rate on the test speakers"),
    "wer": MetricSpec(False, "%", 100, 1.0, "word error rate, corpus-level"),
    "cer": MetricSpec(False, "%", 100, 1.0, "character error rate, corpus-level"),
    "test_wer": MetricSpec(False, "%", 100, 1.0, "word error rate on test, greedy decoding"),
    "test_cer": MetricSpec(False, "%", 100, 1.0, "character error rate on test, greedy"),
    "test_wer_lm": MetricSpec(False, "%", 100, 1.0, "test WER, beam search with word n-gram LM"),
    "test_cer_lm": MetricSpec(False, "%", 100, 1.0, "test CER, beam search with word n-gram LM"),
    "dev_wer": MetricSpec(False, "%", 100, 1.0, "word error rate on dev, greedy"),
    "dev_cer": MetricSpec(False, "%", 100, 1.0, "character error rate on dev, greedy"),
    "test_other_wer": MetricSpec(False, "%", 100, 1.0, "WER on LibriSpeech test-other, greedy"),
    "test_other_cer": MetricSpec(False, "%", 100, 1.0, "CER on LibriSpeech test-other, greedy"),
    "test_other_wer_lm": MetricSpec(False, "%", 100, 1.0, "test-other WER with the LM"),
    "test_other_cer_lm": MetricSpec(False, "%", 100, 1.0, "test-other CER with the LM"),
    "labeled_seconds": MetricSpec(True, "s", 1, 0.0, "labeled speech used", ranked=False),
    "test_substitutions": MetricSpec(False, "", 1, 0.0, "word substitutions", ranked=False),
    "test_deletions": MetricSpec(False, "", 1, 0.0, "word deletions", ranked=False),
    "test_insertions": MetricSpec(False, "", 1, 0.0, "word insertions", ranked=False),
    # self-supervised pre-training diagnostics (informational: not ranked, never gating)
    "code_perplexity": MetricSpec(
        True, "", 1, 0.0, "exp(entropy) of test-frame codes, summed over groups", ranked=False
    ),
    "code_usage": MetricSpec(
        True, "%", 100, 0.0, "share of codebook entries used on test", ranked=False
    ),
    "adjacent_agreement": MetricSpec(
        True, "%", 100, 0.0, "adjacent test frames with the same code (per group)", ranked=False
    ),
    "adjacent_agreement_all": MetricSpec(
        True, "%", 100, 0.0, "adjacent test frames with every group's code the same", ranked=False
    ),
    "phone_mi_bits": MetricSpec(
        True, "bits", 1, 0.0, "mutual information of test codes and phones", ranked=False
    ),
    "phone_pnmi": MetricSpec(
        True, "%", 100, 0.0, "I(code; phone) / H(phone) on test frames (HuBERT)", ranked=False
    ),
    "phone_purity": MetricSpec(
        True, "%", 100, 0.0, "test frames whose code's most common phone is theirs", ranked=False
    ),
    "pretrain_accuracy": MetricSpec(
        True, "%", 100, 0.0, "pre-training accuracy, last 10% of updates", ranked=False
    ),
    "pretrain_chance": MetricSpec(
        True, "%", 100, 0.0, "pre-training accuracy of guessing", ranked=False
    ),
    "probe_dev_per": MetricSpec(False, "%", 100, 1.0, "frozen-probe PER on the dev speakers"),
    "probe_test_per": MetricSpec(False, "%", 100, 1.0, "frozen-probe PER on the test speakers"),
    "pretrain_loss": MetricSpec(
        False,
        "",
        1,
        0.0,
        "final pre-training objective (not comparable across objectives)",
        ranked=False,
    ),
    "parameters": MetricSpec(False, "", 1, 0.0, "trainable parameters", ranked=False),
    # speech enhancement (bench.metrics.enhancement)
    "pesq_wb": MetricSpec(True, "MOS-LQO", 1, 0.05, "PESQ wide-band (P.862.2), 16 kHz"),
    "pesq_nb": MetricSpec(True, "MOS-LQO", 1, 0.05, "PESQ narrow-band (P.862 + P.862.1)"),
    "stoi": MetricSpec(True, "%", 100, 0.5, "short-time objective intelligibility"),
    "estoi": MetricSpec(True, "%", 100, 0.5, "extended STOI"),
    "si_sdr": MetricSpec(True, "dB", 1, 0.2, "scale-invariant signal-to-distortion ratio"),
    "pesq_wb_gain": MetricSpec(True, "MOS-LQO", 1, 0.05, "PESQ-WB minus the noisy input's"),
    "pesq_nb_gain": MetricSpec(True, "MOS-LQO", 1, 0.05, "PESQ-NB minus the noisy input's"),
    "stoi_gain": MetricSpec(True, "%", 100, 0.5, "STOI minus the noisy input's"),
    "estoi_gain": MetricSpec(True, "%", 100, 0.5, "ESTOI minus the noisy input's"),
    "si_sdr_gain": MetricSpec(True, "dB", 1, 0.2, "SI-SDR minus the noisy input's"),
    "pesq_failures": MetricSpec(
        False, "", 1, 0.0, "test utterances on which PESQ failed (left out)", ranked=False
    ),
    # grapheme-to-phoneme (bench.metrics.g2p): PER against the closest reference pronunciation,
    # WER = share of words matching none of their reference pronunciations
    "test_per_greedy": MetricSpec(False, "%", 100, 0.5, "G2P test PER, greedy decoding"),
    "test_wer_greedy": MetricSpec(False, "%", 100, 1.0, "G2P test word error, greedy decoding"),
    "test_per_beam": MetricSpec(False, "%", 100, 0.5, "G2P test PER, beam search"),
    "test_wer_beam": MetricSpec(False, "%", 100, 1.0, "G2P test word error, beam search"),
    "dev_per_greedy": MetricSpec(False, "%", 100, 0.5, "G2P valid PER, greedy decoding"),
    # the distillation teacher's own test scores, in each word_kd/sequence_kd student's
    # record (the ceiling; informational, not the row's method)
    "teacher_per_greedy": MetricSpec(
        False, "%", 100, 0.5, "G2P KD teacher's test PER, greedy", ranked=False
    ),
    "teacher_wer_greedy": MetricSpec(
        False, "%", 100, 1.0, "G2P KD teacher's test WER, greedy", ranked=False
    ),
    "teacher_per_beam": MetricSpec(
        False, "%", 100, 0.5, "G2P KD teacher's test PER, beam", ranked=False
    ),
    "teacher_wer_beam": MetricSpec(
        False, "%", 100, 1.0, "G2P KD teacher's test WER, beam", ranked=False
    ),
    # metric learning (bench.metrics.retrieval; bench.tasks.speaker and bench.tasks.prosody)
    "recall_at_1": MetricSpec(True, "%", 100, 1.0, "Recall@1 on unseen test speakers"),
    "map_at_r": MetricSpec(True, "%", 100, 1.0, "MAP@R on unseen test speakers"),
    "output_recall_at_1": MetricSpec(
        True, "%", 100, 1.0, "Recall@1 of the head's output (digits_metric)", ranked=False
    ),
    "output_map_at_r": MetricSpec(
        True, "%", 100, 1.0, "MAP@R of the head's output (digits_metric)", ranked=False
    ),
    "pixels_recall_at_1": MetricSpec(
        True, "%", 100, 1.0, "Recall@1 of raw pixels, cosine (reference)", ranked=False
    ),
    "pixels_map_at_r": MetricSpec(
        True, "%", 100, 1.0, "MAP@R of raw pixels, cosine (reference)", ranked=False
    ),
    "valid_recall_at_1": MetricSpec(
        True, "%", 100, 1.0, "Recall@1 on the valid speakers (model selection)", ranked=False
    ),
    "valid_map_at_r": MetricSpec(
        True, "%", 100, 1.0, "MAP@R on the valid speakers (what tuning selects on)", ranked=False
    ),
    "nmi": MetricSpec(True, "%", 100, 1.0, "NMI of k-means clusters vs speakers"),
    "eer": MetricSpec(False, "%", 100, 1.0, "speaker-verification equal error rate, all pairs"),
    "macro_f1": MetricSpec(True, "%", 100, 1.0, "macro-averaged F1 over classes"),
    "ece_before": MetricSpec(False, "%", 100, 0.5, "ECE of the classifier, uncalibrated"),
    "ece_after": MetricSpec(False, "%", 100, 0.5, "ECE after temperature scaling on valid"),
    # augmentation ablation (bench.tasks.augment): tone-of-voice accuracy per test condition
    "acc_clean": MetricSpec(True, "%", 100, 1.0, "accuracy on the clean test audio"),
    "acc_noisy": MetricSpec(True, "%", 100, 1.0, "accuracy on test audio with noise at 5 dB"),
    "acc_speed": MetricSpec(True, "%", 100, 1.0, "accuracy on test audio sped up ×1.15"),
    # VQ-VAE on log-mel frames (bench.tasks.vqvae)
    "recon_mse": MetricSpec(
        False, "", 1, 0.01, "test log-mel reconstruction MSE, per-bin standardised (1 = train mean)"
    ),
    "restarted_entries": MetricSpec(
        False, "", 1, 0.0, "codebook entries re-initialised in training", ranked=False
    ),
    # image augmentation ablation (bench.tasks.image_augment): digits per test condition
    "accuracy_clean": MetricSpec(True, "%", 100, 1.0, "digits accuracy on the clean test images"),
    "accuracy_rotated": MetricSpec(True, "%", 100, 1.0, "digits accuracy, test images at ±30°"),
    "accuracy_scaled": MetricSpec(True, "%", 100, 1.0, "digits accuracy, test images ×0.7, ×1.3"),
    "nll_clean": MetricSpec(False, "nats", 1, 0.01, "NLL on the clean test images"),
    "nll_rotated": MetricSpec(False, "nats", 1, 0.01, "NLL on the rotated test images"),
    "nll_scaled": MetricSpec(False, "nats", 1, 0.01, "NLL on the rescaled test images"),
    # knowledge distillation (bench.tasks.distill): the teacher, shown beside each student
    "teacher_accuracy": MetricSpec(
        True, "%", 100, 0.0, "the distillation teacher's test accuracy", ranked=False
    ),
    "teacher_agreement": MetricSpec(
        True,
        "%",
        100,
        0.0,
        "test items where the student predicts the teacher's class",
        ranked=False,
    ),
}

TIMING_UNITS: dict[str, MetricSpec] = {
    "train_samples_per_s": MetricSpec(True, "samples/s"),
    "eval_samples_per_s": MetricSpec(True, "samples/s"),
    "step_ms_median": MetricSpec(False, "ms"),
    "peak_mem_mb": MetricSpec(False, "MiB"),
    "flops_per_sample": MetricSpec(False, "FLOP"),
    "mfu": MetricSpec(True, "%", 100),
    "calibrator_fit_ms": MetricSpec(False, "ms"),
    "calibrator_samples_per_s": MetricSpec(True, "samples/s"),
    "train_audio_s_per_s": MetricSpec(True, "audio s/s"),
    "rtf": MetricSpec(False, "", 1),  # real-time factor: wall seconds per audio second
    "flops_per_audio_second": MetricSpec(False, "FLOP"),
    "decode_rtf_greedy": MetricSpec(False, "", 1),  # decoding wall s per audio s
    "decode_rtf_beam": MetricSpec(False, "", 1),
    # grapheme-to-phoneme decoding throughput
    "decode_greedy_words_per_s": MetricSpec(True, "words/s"),
    "decode_beam_words_per_s": MetricSpec(True, "words/s"),
}


def spec(name: str) -> MetricSpec | None:
    """The spec of a metric or timing key, or None when it is not in the tables."""
    return METRICS.get(name) or TIMING_UNITS.get(name)
