from dataclasses import dataclass

import pytest

from bench.config import build_config


@dataclass
class Cfg:
    epochs: int = 3
    lr: float = 0.1

    def validate(self):
        if self.epochs < 1:
            raise ValueError("epochs must be >= 1")


def test_unknown_key_is_an_error_listing_known_keys():
    with pytest.raises(ValueError, match=r"unknown key\(s\) epoch .*known keys: epochs, lr"):
        build_config(Cfg, {"epoch": 5})


def test_overrides_and_validation():
    assert build_config(Cfg, {"epochs": 5}, lr=0.2) == Cfg(5, 0.2)
    with pytest.raises(ValueError, match="epochs must be"):
        build_config(Cfg, epochs=0)
