"""Optional bridges from vaekit's estimators to other libraries' conventions.

Each bridge lives in its own module and imports its library only there, so
``import vaekit`` never needs them:

- :mod:`vaekit.integrations.pyod` -- ``VAEOD``, a drop-in PyOD detector
  (``pip install "pyod>=2.0"``).

Nothing inside vaekit imports this package; it sits on top of the estimators.
"""
