"""metarl: memory-based meta-reinforcement learning (RL²) on Meta-World.

Three layers: ``metarl.envs`` (the world: benchmarks and RL² trials),
``metarl.agents`` (the minds: recurrent and memory cells, actor-critics) and
``metarl`` itself (the loop: training, evaluation, videos, plots, CLI).
"""

__version__ = "0.1.0"
