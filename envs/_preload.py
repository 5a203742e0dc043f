"""Imported once by the forkserver so that workers share these module pages.

Meta-World's import can fail when ``MUJOCO_GL`` names a missing GL library;
then workers import it themselves and report the error with their envs.
"""

import metarl.envs.vector  # noqa: F401 - and the worker code it imports

try:
    import metaworld  # noqa: F401
except Exception:  # noqa: BLE001 - any import failure is reported later, per worker
    pass
