"""espeak-ng speech synthesis through ctypes, from the `espeakng-loader` wheel.

The wheel ships libespeak-ng and its voice data, so no system package or download is
needed. Synthesis runs in synchronous mode: a callback collects the 16-bit samples and the
phoneme events (IPA names with exact sample positions), which give frame alignments.

espeak-ng keeps internal state between utterances (waveform phase, random generators), so
the output of one call depends on the calls before it in the same process. It is
deterministic for a fixed sequence of calls from a fresh process; the corpus builder
therefore synthesises each shard of utterances in its own fresh process, in a fixed order.
espeak-ng is GPL-3.0 (loaded at run time, not linked into this project).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

# speak_lib.h constants
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_PHONEME_IPA = 0x0002
INITIALIZE_DONT_EXIT = 0x8000
POS_CHARACTER = 1
CHARS_UTF8 = 1
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_END, EVENT_PHONEME = 0, 1, 5, 7
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # sample index within this utterance
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class Voice:
    """How espeak speaks one utterance: voice name and prosody parameters."""

    name: str  # e.g. "en-us+m3", "lv+f2"
    rate: int = 175  # words per minute (espeak: 80..450)
    pitch: int = 50  # base pitch 0..100
    pitch_range: int = 50  # pitch range 0..100
    volume: int = 100  # 0..200


@dataclass(frozen=True)
class Synthesis:
    """Raw espeak output: int16 samples at ``sample_rate`` and phoneme events."""

    samples: np.ndarray  # int16
    sample_rate: int
    phonemes: tuple[tuple[str, int], ...]  # (IPA name, start sample); "" marks a pause
    word_starts: tuple[int, ...]  # start sample of each word


class EspeakError(RuntimeError):
    """espeak-ng could not be loaded or refused a request."""


class Espeak:
    """One espeak-ng engine per process (the library is a process-wide singleton)."""

    _instance: Espeak | None = None

    def __new__(cls) -> Espeak:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
            cls._instance._init()
        return cls._instance

    def _init(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise EspeakError(
                "the espeakng-loader package is missing; install the project with "
                '`pip install -e ".[dev]"` (it ships libespeak-ng and its voices)'
            ) from exc
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        options = INITIALIZE_PHONEME_EVENTS | INITIALIZE_PHONEME_IPA | INITIALIZE_DONT_EXIT
        data_path = espeakng_loader.get_data_path().encode()
        rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, options)
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed (returned {rate}) with data {data_path}")
        self.sample_rate = rate
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, str, int]] = []
        self._callback = _CALLBACK(self._collect)  # keep a reference: C holds a raw pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == EVENT_PHONEME:
                name = bytes(ev.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                self._events.append((EVENT_PHONEME, name, ev.sample))
            elif ev.type == EVENT_WORD:
                self._events.append((EVENT_WORD, "", ev.sample))
            i += 1
        return 0

    def synthesize(self, text: str, voice: Voice, seed: int = 0) -> Synthesis:
        """Speak ``text`` with ``voice``; ``seed`` feeds espeak's random generator."""
        if self.lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise EspeakError(f"espeak has no voice {voice.name!r} (see espeak-ng-data/voices)")
        for param, value in (
            (PARAM_RATE, voice.rate),
            (PARAM_PITCH, voice.pitch),
            (PARAM_RANGE, voice.pitch_range),
            (PARAM_VOLUME, voice.volume),
        ):
            self.lib.espeak_SetParameter(param, int(value), 0)
        self.lib.espeak_ng_SetRandSeed(seed)
        self._chunks, self._events = [], []
        data = text.encode("utf-8")
        err = self.lib.espeak_Synth(
            data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None
        )
        if err != 0:
            raise EspeakError(f"espeak_Synth failed with code {err} for text {text!r}")
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        phonemes = tuple((name, s) for kind, name, s in self._events if kind == EVENT_PHONEME)
        words = tuple(s for kind, _, s in self._events if kind == EVENT_WORD)
        return Synthesis(samples.astype(np.int16), self.sample_rate, phonemes, words)
