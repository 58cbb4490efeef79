from django.urls import path

from planner.views import (
    approvals,
    catalog,
    dashboard,
    notifications,
    projects,
    queue,
    reports,
    scene_csv,
    scenes,
)

app_name = "planner"

project = "projects/<int:project_id>/"
scene = project + "scenes/<int:scene_id>/"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("catalog/", catalog.catalog_page, name="catalog"),
    path("projects/", projects.project_list, name="projects"),
    path("projects/new/", projects.project_new, name="project-new"),
    path(project, scenes.project_detail, name="project"),
    path(project + "edit/", projects.project_edit, name="project-edit"),
    path(project + "scenes/add/", scenes.scene_add, name="scene-add"),
    path(project + "scenes/reorder/", scenes.scenes_reorder, name="scenes-reorder"),
    path(project + "scenes.csv", scene_csv.scenes_export, name="scenes-export"),
    path(project + "scenes/import/", scene_csv.scenes_import, name="scenes-import"),
    path(project + "what-if/", scenes.whatif, name="whatif"),
    path(project + "what-if/apply/", scenes.whatif_apply, name="whatif-apply"),
    path(project + "submit/", approvals.submit, name="project-submit"),
    path(project + "cancel/", approvals.cancel, name="project-cancel"),
    path(project + "deliver/", approvals.deliver, name="project-deliver"),
    path(project + "launch/", queue.plan_launch, name="plan-launch"),
    path("queue/", queue.queue_page, name="queue"),
    path("queue/jobs/<int:job_id>/cancel/", queue.job_cancel, name="job-cancel"),
    path("approvals/", approvals.inbox, name="approvals"),
    path("approvals/<int:version_id>/", approvals.approval_detail, name="approval"),
    path("approvals/<int:version_id>/approve/", approvals.approve, name="approval-approve"),
    path("approvals/<int:version_id>/reject/", approvals.reject, name="approval-reject"),
    path("approvals/<int:version_id>/send-back/", approvals.send_back, name="approval-send-back"),
    path("approvals/<int:version_id>/withdraw/", approvals.withdraw, name="approval-withdraw"),
    path("reports/", reports.reports_page, name="reports"),
    path("reports/usage.csv", reports.usage_csv, name="usage-csv"),
    path("reports/usage.xlsx", reports.usage_xlsx, name="usage-xlsx"),
    path("reports/costs.csv", reports.costs_csv, name="costs-csv"),
    path("notifications/", notifications.notification_list, name="notifications"),
    path("notifications/read/", notifications.notifications_read, name="notifications-read"),
    path(scene, scenes.scene_update, name="scene-update"),
    path(scene + "duplicate/", scenes.scene_duplicate, name="scene-duplicate"),
    path(scene + "delete/", scenes.scene_delete, name="scene-delete"),
    path(scene + "restore/", scenes.scene_restore, name="scene-restore"),
    path(scene + "move/", scenes.scene_move, name="scene-move"),
    path(scene + "launch/", queue.scene_launch, name="scene-launch"),
    path(scene + "takes/", queue.scene_takes, name="scene-takes"),
    path(scene + "takes/<int:job_id>/judge/", queue.take_judge, name="take-judge"),
]
