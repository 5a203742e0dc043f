"""Config: YAML + --set overrides, typed checks, one-line errors naming the closest key."""

from pathlib import Path

import pytest
import yaml

from metarl.config import (
    DEFAULT_PRESET,
    ConfigError,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PRESETS = ["point_nav", "point_reach", "bandit", "ml1_reach", "ml1_reach_infer", "ml1_push", "ml1_pick_place", "ml10", "ml45"]


def test_overrides_are_typed_and_nested():
    cfg = load_config(None, ["env.num_envs=3", "agent.cell=gru", "ppo.lr=1e-3", "ppo.target_kl=null", "seed=7"])
    assert cfg.env.num_envs == 3 and cfg.agent.cell == "gru" and cfg.seed == 7
    assert cfg.ppo.lr == pytest.approx(1e-3) and isinstance(cfg.ppo.lr, float)
    assert cfg.ppo.target_kl is None


def test_int_widens_to_float_but_not_the_reverse():
    assert load_config(None, ["ppo.lr=1"]).ppo.lr == 1.0
    with pytest.raises(ConfigError, match="env.num_envs.*int"):
        load_config(None, ["env.num_envs=2.5"])


@pytest.mark.parametrize(
    "override, closest",
    [("env.num_env=3", "env.num_envs"), ("agnt.cell=gru", "agent.cell"), ("total_step=5", "total_steps")],
)
def test_unknown_key_names_the_closest(override, closest):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    msg = str(err.value)
    assert "\n" not in msg and f"'{closest}'" in msg


def test_wrong_type_and_bad_choice_are_one_line():
    for bad, needle in [(["seed=abc"], "seed"), (["ppo.trial_end=bootstrp"], "bootstrap"), (["env.num_envs=0"], ">= 1"),
                       (["env.num_envs=4", "env.collect_groups=5"], "<= env.num_envs (4)"),
                       (["env.spin=2"], "'env.spin' must be seconds in [0, 1]")]:
        with pytest.raises(ConfigError) as err:
            load_config(None, bad)
        assert needle in str(err.value) and "\n" not in str(err.value)


def test_yaml_unknown_key_and_missing_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("env:\n  benchmrk: bandit\n")
    with pytest.raises(ConfigError, match="env.benchmark"):
        load_config(p)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "nope.yaml")


def test_precedence_preset_file_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("total_steps: 123\nenv:\n  num_envs: 5\n")
    cfg = load_config(p, ["env.num_envs=6"], preset=DEFAULT_PRESET)
    assert cfg.total_steps == 123  # file beats preset
    assert cfg.env.num_envs == 6  # --set beats file
    assert cfg.env.max_episode_steps == DEFAULT_PRESET["env"]["max_episode_steps"]  # preset beats default


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(None, ["agent.encoder_sizes=[32]", "agent.cell_options.slots=8"])
    save_config(cfg, tmp_path / "config.yaml")
    again = config_from_dict(yaml.safe_load((tmp_path / "config.yaml").read_text()))
    assert again == cfg and again.agent.cell_options == {"slots": 8}
    assert config_to_dict(TrainConfig())["env"]["benchmark"]


# presets on another cell, each saying why in its header: point_reach keeps the gru its results were measured with
OTHER_CELL = {"point_reach": "gru", "ml1_reach_infer": "gru"}


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load_and_default_to_forget_memory(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.agent.cell == OTHER_CELL.get(name, "forget-memory")
    assert load_config(CONFIGS / f"{name}.yaml", ["agent.cell=mlp"]).agent.cell == "mlp"


def test_keyed_cell_options_apply_only_to_their_cell():
    from metarl.agents import cell_options_for

    cfg = load_config(CONFIGS / "point_nav.yaml")
    assert cell_options_for(cfg.agent) == {"slots": 8, "width": 8}
    assert cell_options_for(load_config(CONFIGS / "point_nav.yaml", ["agent.cell=mlp"]).agent) == {}
    assert cell_options_for(load_config(None, ["agent.cell_options.slots=4"]).agent) == {"slots": 4}


@pytest.mark.parametrize("spelling, value", [("1e5", 100_000), ("100_000", 100_000), ("2e6", 2_000_000), ("2E3", 2000)])
def test_int_keys_accept_exact_integer_spellings(spelling, value, tmp_path):
    cfg = load_config(None, [f"total_steps={spelling}", f"env.episodes_per_trial={spelling}"])
    assert cfg.total_steps == value and type(cfg.total_steps) is int
    assert cfg.env.episodes_per_trial == value and type(cfg.env.episodes_per_trial) is int  # int | None
    p = tmp_path / "c.yaml"
    p.write_text(f"total_steps: {spelling}\n")
    assert load_config(p).total_steps == value


@pytest.mark.parametrize("key", ["total_steps", "env.episodes_per_trial"])
@pytest.mark.parametrize("spelling", ["1.5e3", "1e-3", "1.0e5"])
def test_int_keys_refuse_non_integer_spellings_in_one_line(key, spelling):
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"{key}={spelling}"])
    msg = str(err.value)
    assert "\n" not in msg and f"'{key}'" in msg and "not an integer" in msg and spelling in msg


def test_integer_spellings_change_no_other_parsing():
    assert load_config(None, ["ppo.lr=1e-3"]).ppo.lr == pytest.approx(1e-3)  # float keys as before
    assert load_config(None, ["ppo.lr=2e2"]).ppo.lr == 200.0
    for bad in ["total_steps=abc", "total_steps=2.5", "total_steps=true"]:
        with pytest.raises(ConfigError, match="expects int"):
            load_config(None, [bad])
    with pytest.raises(ConfigError, match="expects int or NoneType"):
        load_config(None, ["env.workers=abc"])


def test_preset_names_resolve_to_the_source_trees_configs(tmp_path, monkeypatch):
    from metarl import presets

    assert presets.CONFIGS_DIR == CONFIGS
    assert sorted(PRESETS) == presets.preset_names()
    for arg in ["ml1_reach", "ml1_reach.yaml"]:
        assert presets.resolve_config(arg) == (CONFIGS / "ml1_reach.yaml", "ml1_reach")
    own = tmp_path / "mine.yaml"
    own.write_text("seed: 3\n")
    assert presets.resolve_config(own) == (own, None)  # a file path is a file path
    with pytest.raises(FileNotFoundError) as err:
        presets.resolve_config("ml1_rech")
    msg = str(err.value)
    assert "\n" not in msg and "did you mean preset 'ml1_reach'" in msg and "presets: " + ", ".join(sorted(PRESETS)) in msg
    monkeypatch.setattr(presets, "CONFIGS_DIR", tmp_path / "no-configs")
    with pytest.raises(FileNotFoundError, match="configs folder .*no-configs is missing"):
        presets.resolve_config("ml1_reach")
