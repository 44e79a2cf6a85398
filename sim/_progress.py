"""Progress bars: tqdm's notebook widgets in Jupyter when ipywidgets is installed, text bars otherwise.

``tqdm.auto`` alone would, in a Jupyter kernel without ipywidgets, warn at import
("IProgress not found", naming the file of the installed tqdm) and then draw text
bars anyway; choosing the text bars here draws the same without the warning.
Whether ipywidgets is installed is looked up without importing it (half a second).
"""

from importlib.util import find_spec

if find_spec("ipywidgets") is None:
    from tqdm.std import tqdm
else:
    from tqdm.auto import tqdm

__all__ = ["tqdm"]
