"""Errors of the inference layer; each message is one line naming what is wrong and where."""


class InferenceError(ValueError):
    """Inputs that do not fit together (targets, priors, a scenario), or a result folder that cannot be used."""
