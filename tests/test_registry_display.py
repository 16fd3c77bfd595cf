"""Display names: declared at registration, read with registry.display_name, else the name."""

import pytest

from bench import registry


def test_display_name_declared_or_falls_back_to_the_name():
    assert registry.display_name("calibrator", "temperature") == "Temperature scaling"
    assert registry.display_name("loss", "proxy_anchor") == "Proxy-Anchor"
    assert registry.display_name("quantizer", "gumbel") == "Gumbel-softmax VQ"
    assert registry.display_name("forcing", "professor") == "Professor forcing"
    assert registry.display_name("classifier", "cnn") == "cnn"  # none declared
    assert registry.display_name("no_such_family", "x") == "x"  # a sweep axis value
    assert registry.has_display_name("calibrator", "none")
    assert not registry.has_display_name("classifier", "cnn")


def test_every_method_of_the_displayed_families_has_a_display_name():
    for family in ("calibrator", "loss", "quantizer", "forcing"):
        missing = [n for n in registry.names(family) if not registry.has_display_name(family, n)]
        assert not missing, f"{family}: no display name for {missing}"


def test_an_empty_display_name_is_refused():
    with pytest.raises(ValueError, match="display"):
        registry.register("test_display_family", "x", display="  ")
