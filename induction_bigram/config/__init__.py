"""Configs: checked sections, composite configs with dotted keys, and named presets.

:mod:`.checks` checks and parses one section's fields; :mod:`.base` builds composite configs
(JSON, ``--set`` overrides) and preset tables; :mod:`.run` is the run config every training
and study starts from.
"""

from induction_bigram.config.base import Config, Presets
from induction_bigram.config.checks import SEED_MAX, at_least, section, seed_field
from induction_bigram.config.run import (
    POSITIONAL_ENCODINGS,
    PRESETS,
    ModelConfig,
    RunConfig,
    StudyConfig,
    TaskConfig,
    TrainConfig,
    preset,
    tiny,
)

__all__ = [
    "POSITIONAL_ENCODINGS",
    "PRESETS",
    "SEED_MAX",
    "Config",
    "ModelConfig",
    "Presets",
    "RunConfig",
    "TaskConfig",
    "TrainConfig",
    "at_least",
    "preset",
    "section",
    "seed_field",
    "StudyConfig",
    "tiny",
]
