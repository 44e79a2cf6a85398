"""Progress bars (``tqdm.auto``), imported once without the warning a Jupyter kernel without ipywidgets gives.

In such a kernel, importing ``tqdm.auto`` warns "IProgress not found" (naming the file of
the installed tqdm, a local path that then shows in every executed notebook, the docs
site's included) and falls back to text bars. Imported here first, with that one
warning filtered, it gives the same text bars to sim's loops and to Mesa, which imports
``tqdm.auto`` too (``mesa.batchrunner``): :mod:`sim.model` imports this module before Mesa.
"""

import warnings

from tqdm.std import TqdmWarning

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
    from tqdm.auto import tqdm

__all__ = ["tqdm"]
