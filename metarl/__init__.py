"""metarl: memory-based meta-reinforcement learning (RL²) on Meta-World.

Three layers: ``metarl.envs`` (the world: benchmarks and RL² trials),
``metarl.agents`` (the minds: recurrent and memory cells, actor-critics) and
``metarl`` itself (the loop: training, evaluation, videos, plots, CLI).
"""

import os as _os

__version__ = "0.1.0"

# In a source checkout ``envs/`` and ``agents/`` sit beside ``metarl/`` (the
# installed package maps them to ``metarl.envs``/``metarl.agents``). When the
# checkout itself is first on sys.path (``python -m metarl`` or pytest from the
# repository root over a regular install, or worker processes started there),
# let the package find its two subpackages in the checkout too.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_root, "envs", "__init__.py")) and _root not in __path__:
    __path__.append(_root)
