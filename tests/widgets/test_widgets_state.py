import pytest

from dltoolkit.errors import SpecError


def test_update_notifies_and_undo_restores(wine_state):
    seen = []
    wine_state.observe(lambda spec: seen.append(spec.train.optimizer.lr))
    wine_state.update({"train.optimizer.lr": 0.05})
    assert seen == [0.05] and wine_state.can_undo
    assert wine_state.undo().train.optimizer.lr == 0.003
    assert seen == [0.05, 0.003]


def test_invalid_update_changes_nothing(wine_state):
    before = wine_state.spec
    with pytest.raises(SpecError, match="train.optimizer.lr"):
        wine_state.update({"train.optimizer.lr": -1})
    assert wine_state.spec is before and not wine_state.can_undo
