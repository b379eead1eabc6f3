"""The package's exceptions.

Every error a user can cause (a bad config value, a token the vocabulary lacks, a corrupt
checkpoint) is one of these, and its message names the offending value. The CLI prints them
as a single line.
"""


class InductionBigramError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(InductionBigramError, ValueError):
    """A config field, preset name or ``--set`` override is invalid."""


class DataError(InductionBigramError, ValueError):
    """Bad input data: unknown characters, token ids out of range, prompts too long."""


class ModelShapeError(InductionBigramError, ValueError):
    """A model lacks the structure an analysis needs (layers, heads, positional embedding)."""


class CheckpointError(InductionBigramError):
    """A checkpoint or run folder is missing, truncated, corrupt or does not match its config."""


class RunFolderError(CheckpointError):
    """A run or study folder cannot be written: it is in use by another process, holds files
    that are not ours, or holds another kind of folder (``--resume`` / ``--overwrite``)."""


class TrainingDivergedError(InductionBigramError):
    """The training loss or a trained weight became NaN or infinite; the run stopped and its
    last good checkpoint was kept."""


class NoCircuitError(InductionBigramError):
    """An analysis that needs an induction circuit found none above its floors (its message
    gives the best candidate and the floors it missed)."""
