import pytest

from pipelines.core.config import TrainerConfig, apply_overrides, config_hash, describe, parse_set_args
from pipelines.core.errors import StudioError
from pipelines.registry import get_entry, list_pipelines, load_pipeline_class


def test_overrides_coerce_strings_to_field_types():
    tc = apply_overrides(TrainerConfig(), {"steps": "10", "grad_clip": "0.5", "cpu": "true",
                                           "mixed_precision": "bf16"})
    assert (tc.steps, tc.grad_clip, tc.cpu, tc.mixed_precision) == (10, 0.5, True, "bf16")


@pytest.mark.parametrize("overrides, words", [
    ({"stepz": "1"}, "unknown option 'stepz'"),
    ({"steps": "ten"}, "whole number"),
    ({"steps": "1.5"}, "whole number"),
    ({"steps": "0"}, "at least 1"),
    ({"cpu": "maybe"}, "true or false"),
    ({"mixed_precision": "fp8"}, "one of auto, no, bf16, fp16"),
])
def test_overrides_reject_unknown_keys_and_wrong_types(overrides, words):
    with pytest.raises(StudioError, match=words):
        apply_overrides(TrainerConfig(), overrides)


def test_set_args_and_hash():
    assert parse_set_args(["lr-g=0.1", "conditional = false"]) == {"lr_g": "0.1",
                                                                 "conditional": "false"}
    with pytest.raises(StudioError, match="key=value"):
        parse_set_args(["lr"])
    assert config_hash(TrainerConfig()) == config_hash(TrainerConfig())
    assert config_hash(TrainerConfig()) != config_hash(TrainerConfig(steps=3))


def test_every_registered_pipeline_has_a_described_config():
    for entry in list_pipelines():
        cls = load_pipeline_class(entry.name)
        specs = describe(cls.Config)
        assert specs and all(s.help for s in specs)
    with pytest.raises(StudioError, match="unknown pipeline .nope.; available: gan, dcgan, cgan"):
        get_entry("nope")
