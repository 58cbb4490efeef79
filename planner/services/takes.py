"""What the producer makes of a take: keeper or reject. Judged takes teach the estimator the team's own
success rate per model (planner.queue_selectors.learned_rates)."""

from django.utils import timezone

from keter.accounts.models import Membership
from planner.models import Job
from planner.services.queue import QueueError


def take_judge(*, job: Job, by: Membership, verdict: str) -> Job:
    """Mark a successful take keeper or rejected (or back to not judged); anything else is refused."""
    if verdict not in Job.Verdict.values:
        raise QueueError("Mark the take keeper or reject", field="verdict")
    if job.team_id != by.team_id:
        raise QueueError("This take belongs to another team")
    judged_at = None if verdict == Job.Verdict.PENDING else timezone.now()
    # Conditional on the state, so a take still rendering (or that failed) cannot be judged.
    take = Job.objects.filter(id=job.pk, state=Job.State.SUCCEEDED)
    if not take.update(verdict=verdict, judged_at=judged_at):
        raise QueueError(f"Take {job.take_number} did not come out: only a successful take can be judged")
    job.verdict, job.judged_at = verdict, judged_at
    return job
