"""The package version, in one place: read by ``pyproject.toml`` (setuptools dynamic version),
:mod:`etnpot` and the model files' header (:mod:`etnpot.io`)."""
__version__ = "0.1.0"
