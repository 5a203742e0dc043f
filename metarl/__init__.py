"""metarl: memory-based meta-reinforcement learning (RL²) on Meta-World.

Three layers: ``metarl.envs`` (the world: benchmarks and RL² trials),
``metarl.agents`` (the minds: recurrent and memory cells, actor-critics) and
``metarl`` itself (the loop: training, evaluation, videos, plots, CLI).
"""

import os as _os

__version__ = "0.1.0"

# Not a sys.path edit: this extends the package's own __path__. An editable install
# (``pip install -e .``, the README's) maps ``envs/``/``agents/`` to ``metarl.envs``/``metarl.agents``
# without it, from any directory and in spawned workers. What breaks without it: a regular
# install used from the repository root, as ``bench/gpu_checks.sh`` (docs/gpu.md) does
# (``pip install --target /tmp/site .``, then ``python3 -m pytest`` and ``python3 -m metarl train``
# there): the checkout's ``metarl/`` is first on sys.path and shadows the installed one, and
# ``import metarl.envs`` fails with ModuleNotFoundError (checked 2026-12-02 both ways).
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_root, "envs", "__init__.py")) and _root not in __path__:
    __path__.append(_root)
