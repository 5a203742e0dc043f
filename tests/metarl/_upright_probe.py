"""Subprocess helper for test_render: where does the gripper appear in each camera's frame?

Run as a script (a fresh process, so the GL backend can be chosen before mujoco
is imported). Prints one JSON object: camera -> {position name -> [row, col]}
centroid of the gripper's pixels in the upright frame, plus the camera's viewing
direction in world coordinates.
"""

from __future__ import annotations

import json
import sys

from metarl.render import CAMERAS, FrameRenderer, RenderSettings, configure_gl

configure_gl()

import metaworld  # noqa: E402  (after the GL backend is chosen)
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

SIZE = int(sys.argv[1]) if len(sys.argv) > 1 else 160
# hand (mocap) targets: a base point above the table, and moves along +z, +x, +y
BASE = np.array([0.0, 0.6, 0.15])
BODY = "right_l6"  # the last arm link and the gripper below it: visible from every fixed camera
MOVES = {"base": (0, 0, 0), "up": (0, 0, 0.15), "x": (0.12, 0, 0), "y": (0, 0.12, 0)}


def hand_geoms(model) -> list[int]:
    """Ids of every geom in the subtree of BODY (wrist and gripper)."""
    hand = model.body(BODY).id
    bodies = {hand}
    for b in range(model.nbody):  # parents have smaller ids than children
        if model.body_parentid[b] in bodies:
            bodies.add(b)
    return [g for g in range(model.ngeom) if model.geom_bodyid[g] in bodies]


def main() -> None:
    ml1 = metaworld.ML1("reach-v3", seed=0)
    env = ml1.train_classes["reach-v3"]()
    env.set_task(ml1.train_tasks[0])
    env.reset()
    model, data = env.model, env.data
    geoms = hand_geoms(model)
    rgba, matid = model.geom_rgba[geoms].copy(), model.geom_matid[geoms].copy()
    renderers = {cam: FrameRenderer(model, data, cam, RenderSettings(size=SIZE)) for cam in CAMERAS}
    out: dict = {cam: {"forward": (-data.cam(cam).xmat.reshape(3, 3)[:, 2]).tolist()} for cam in CAMERAS}
    for name, delta in MOVES.items():
        data.mocap_pos[0] = BASE + np.array(delta)
        mujoco.mj_step(model, data, 200)  # let the weld pull the hand to the target
        for cam, renderer in renderers.items():
            plain = renderer.render().astype(np.int32)  # (H, W, 3)
            model.geom_rgba[geoms] = (1.0, 0.0, 1.0, 1.0)
            model.geom_matid[geoms] = -1
            painted = renderer.render().astype(np.int32)
            model.geom_rgba[geoms], model.geom_matid[geoms] = rgba, matid
            mask = np.abs(painted - plain).sum(-1) > 60  # (H, W): visible gripper pixels
            rows, cols = np.nonzero(mask)
            out[cam][name] = [float(rows.mean()), float(cols.mean()), int(mask.sum())] if mask.any() else None
        out.setdefault("hand", {})[name] = data.body("hand").xpos.tolist()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
