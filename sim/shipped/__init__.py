"""The scenarios and calibration shipped with Modu, as package data.

``scenarios/`` and ``calibration/`` here are the repository's top-level
folders (links in a source checkout, copies in an installed wheel), so
``importlib.resources`` finds them however Modu was installed.
"""
