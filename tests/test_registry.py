import pytest

from bench import registry
from bench.registry import RegistryCollisionError, UnknownNameError, register


def test_register_and_get_roundtrip():
    @register("test_family_a", "alpha")
    class Alpha:
        pass

    assert registry.get("test_family_a", "alpha") is Alpha
    assert Alpha.registry_name == "alpha"
    assert registry.names("test_family_a") == ["alpha"]


def test_unknown_name_lists_known_names():
    @register("test_family_b", "one")
    class One:
        pass

    @register("test_family_b", "two")
    class Two:
        pass

    with pytest.raises(UnknownNameError, match=r"unknown test_family_b 'three'.*one, two"):
        registry.get("test_family_b", "three")


def test_unknown_family_lists_families():
    with pytest.raises(UnknownNameError, match="known families"):
        registry.get("no_such_family", "x")


def test_collision_is_refused():
    @register("test_family_c", "same")
    class First:
        pass

    with pytest.raises(RegistryCollisionError, match="already registered"):

        @register("test_family_c", "same")
        class Second:
            pass

    assert registry.get("test_family_c", "same") is First


def test_names_filter_by_pattern():
    for name in ("vq_ema", "vq_st", "gumbel"):
        register("test_family_d", name)(type(name, (), {}))
    assert registry.names("test_family_d", "vq_*") == ["vq_ema", "vq_st"]


def test_project_registrations_load():
    assert "calibration" in registry.names("task")
    assert {"none", "temperature", "vector", "histogram", "isotonic"} <= set(
        registry.names("calibrator")
    )
    assert {"mlp", "cnn"} <= set(registry.names("classifier"))
