"""Reporting: everything that writes files. Atomic files and manifests, figures, and writers that format result objects.

Imported by nothing below it: the model, scenarios, experiments and inference
return objects; these modules only turn them into CSV, JSON, figures and markdown.
"""
