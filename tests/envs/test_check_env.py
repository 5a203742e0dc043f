"""gymnasium's own env checker passes on Meta-World and toy trial envs."""

from __future__ import annotations

import warnings

import pytest
from gymnasium.utils.env_checker import check_env

from metarl.envs import make_env

# Honest bounds the checker only remarks on: Meta-World's hidden goal slots are
# always 0 (min == max) and its object slots are unbounded, as is the reward slot.
ALLOWED = ("maximum and minimum values are equal", "is -infinity", "is infinity")


@pytest.mark.parametrize(
    "benchmark,kwargs",
    [
        ("ML1/reach-v3", dict(max_episode_steps=20)),
        ("ML10", dict(split="test", max_episode_steps=20, episodes_per_trial=2)),
        ("point-nav", {}),
        # the checker rejects any 1-step episode ("something has gone very wrong"),
        # so bandit is checked with 2 pulls per attempt instead of its default 1
        ("bandit", dict(max_episode_steps=2)),
    ],
)
def test_check_env_passes(benchmark: str, kwargs: dict) -> None:
    env = make_env(benchmark, seed=0, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    unexpected = [str(w.message) for w in caught if not any(a in str(w.message) for a in ALLOWED)]
    assert not unexpected, unexpected
    env.close()
