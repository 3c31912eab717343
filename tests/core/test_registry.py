import pytest

from dltoolkit.errors import DLToolkitError, UnknownNameError
from dltoolkit.registry import Registry


def test_register_get_and_list():
    reg = Registry("thing")
    reg.add("alpha", 1)

    @reg.register("beta")
    def beta():
        return 2

    assert reg.get("alpha") == 1 and reg.get("beta") is beta
    assert reg.names() == ["alpha", "beta"] and "alpha" in reg and len(reg) == 2


def test_duplicates_are_rejected():
    reg = Registry("thing")
    reg.add("alpha", 1)
    with pytest.raises(DLToolkitError, match="already registered"):
        reg.add("alpha", 2)


def test_unknown_name_lists_choices_and_closest():
    reg = Registry("optimizer")
    for name in ("sgd", "adam", "adamw"):
        reg.add(name, name)
    with pytest.raises(
        UnknownNameError, match=r"Unknown optimizer: received 'adamm'.*Did you mean 'adam'"
    ) as e:
        reg.get("adamm")
    assert isinstance(e.value, KeyError)
