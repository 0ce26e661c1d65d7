"""Database models, one module per entity; importing this package registers every table."""

from inventory.models.asset import (
    Asset,
    AssetAddress,
    AssetBase,
    AssetChange,
    AssetData,
    AssetKind,
    AssetTag,
    ChangeAction,
    Criticality,
    Exposure,
)
from inventory.models.finding import (
    Audit,
    AuditOutcome,
    Finding,
    FindingEvent,
    FindingStatus,
    ObservedService,
    Severity,
)
from inventory.models.schedule import (
    AssetSchedule,
    JobStatus,
    MaintenanceWindow,
    SchedulerLease,
    SchedulerWorker,
    WindowMode,
    WindowScope,
    WorkerState,
)
from inventory.models.token import ApiToken
from inventory.models.user import LoginFailure, Role, User

__all__ = [
    "Audit",
    "AuditOutcome",
    "Finding",
    "FindingEvent",
    "FindingStatus",
    "ObservedService",
    "Severity",
    "ApiToken",
    "Asset",
    "AssetAddress",
    "AssetBase",
    "AssetChange",
    "AssetData",
    "AssetKind",
    "AssetTag",
    "ChangeAction",
    "Criticality",
    "Exposure",
    "LoginFailure",
    "Role",
    "User",
    "AssetSchedule",
    "JobStatus",
    "MaintenanceWindow",
    "SchedulerLease",
    "SchedulerWorker",
    "WindowMode",
    "WindowScope",
    "WorkerState",
]
