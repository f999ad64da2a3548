"""Typed errors. The CLI turns every `HqcError` into one line on stderr and exit code 2
(a `VerificationError`: exit code 1)."""

from __future__ import annotations


class HqcError(Exception):
    """Base of every error a user can cause; its message is one line naming the problem."""


class ModelError(HqcError):
    """The ONNX model cannot be read or is not a model hqc supports."""


class UnsupportedOpError(ModelError):
    """The model uses an operator the frontend does not support."""


class NeuronError(ModelError):
    """A spiking nonlinearity was found that recognize-neurons cannot lift."""


class TargetError(HqcError):
    """A cost table is missing, malformed or incomplete."""


class DataError(HqcError):
    """A data file (NPZ) is malformed or does not fit the model."""


class PlanError(HqcError):
    """A plan or search-space config is malformed or does not fit the model."""


class ConfigError(HqcError):
    """A config file or option value is invalid."""


class VerificationError(HqcError):
    """The integer backends disagree on a model hqc lowered; the CLI exits with code 1."""


class PassError(HqcError):
    """A pass failed; the message names the pass and the passes run before it."""
