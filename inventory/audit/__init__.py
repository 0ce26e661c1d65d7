"""The audit engine: finds out what an asset really exposes. It knows no database (STYLE.md #8).

It takes a Target (addresses, declared services, AE titles) and returns an AuditReport (services
observed, finding candidates, each probe's outcome); the services layer turns that into stored
findings. A remote sensor can run the same engine with no inventory at all.
"""

from inventory.audit.engine import AuditReport, audit, run_audit
from inventory.audit.probes.base import (
    FindingCandidate,
    Probe,
    ProbeContext,
    ProbeOutcome,
    ProbeResult,
    ServiceObservation,
    Target,
)
from inventory.audit.scope import AuditScope

__all__ = [
    "AuditReport",
    "AuditScope",
    "FindingCandidate",
    "Probe",
    "ProbeContext",
    "ProbeOutcome",
    "ProbeResult",
    "ServiceObservation",
    "Target",
    "audit",
    "run_audit",
]
