"""metarl: memory-based meta-reinforcement learning (RL²) on Meta-World.

Three layers: ``metarl.envs`` (the world: benchmarks and RL² trials),
``metarl.agents`` (the minds: recurrent and memory cells, actor-critics) and
``metarl`` itself (the loop: training, evaluation, videos, plots, CLI).
"""

import os as _os

__version__ = "0.1.0"

# Not a sys.path edit: this extends the package's own __path__. An editable install
# (``pip install -e .``) maps ``envs/`` and ``agents/`` to ``metarl.envs``/``metarl.agents``
# without it. A regular install (``pip install .``) does not: from the repository root
# (``python -m metarl``, ``python -m pytest``, worker processes started there) the
# checkout's ``metarl/`` is first on sys.path and shadows the installed package, and
# without these lines ``import metarl.envs`` fails there with ModuleNotFoundError
# (checked in fresh venvs with each install). With them the checkout finds its two subpackages.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_root, "envs", "__init__.py")) and _root not in __path__:
    __path__.append(_root)
