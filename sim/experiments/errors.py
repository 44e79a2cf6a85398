"""Errors of the experiments layer; each message is one line naming what is wrong and where."""


class ExperimentError(ValueError):
    """An experiment that cannot run as asked: a malformed design, a folder holding another experiment, ..."""


class StoreError(ExperimentError):
    """An output folder whose store cannot be used (another experiment's, locked, damaged)."""
