"""Probes, one module each; importing this package registers them all."""

from inventory.audit.probes import remote_access, tcp  # noqa: F401 - registration
from inventory.audit.probes.base import Probe

__all__ = ["Probe"]
