"""Errors of policy design; each message is one line naming what is wrong and where (the option, as a rule)."""


class PolicyError(ValueError):
    """A policy question that cannot be asked as put: an unknown city or objective, a bad grid, no feasible candidate, ..."""
