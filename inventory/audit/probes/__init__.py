"""Probes, one module each; importing this package imports (and so registers) every module in it."""

import importlib
import pkgutil

from inventory.audit.probes.base import Probe

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Probe"]
