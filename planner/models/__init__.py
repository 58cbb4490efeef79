from planner.models.approvals import AuditEvent, BudgetLine, BudgetVersion, Notification
from planner.models.catalog import PriceVersion, VideoModel
from planner.models.projects import Project, Scene
from planner.models.queue import Job

__all__ = [
    "AuditEvent",
    "BudgetLine",
    "BudgetVersion",
    "Job",
    "Notification",
    "PriceVersion",
    "Project",
    "Scene",
    "VideoModel",
]
