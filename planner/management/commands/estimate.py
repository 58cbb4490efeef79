import json

from django.core.management.base import BaseCommand

from keter.errors import DomainError
from planner.estimates import estimate_from_query


class Command(BaseCommand):
    help = "Estimate the credits of a take and of the takes needed for a number of keepers."

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, help="catalog slug, e.g. runway-gen4-turbo")
        parser.add_argument("--seconds", required=True, help="clip length in seconds")
        parser.add_argument("--quality", help="e.g. 720p (default: the model's first quality)")
        audio = parser.add_mutually_exclusive_group()
        audio.add_argument("--audio", dest="audio", action="store_const", const="on")
        audio.add_argument("--no-audio", dest="audio", action="store_const", const="off")
        parser.add_argument("--motion", help="fast: fast-motion pricing")
        parser.add_argument("--upscale", help="4k: add the 4K upscale")
        parser.add_argument("--hdr", action="store_const", const="on")
        parser.add_argument("--sound-effects", dest="sound_effects", action="store_const", const="on")
        parser.add_argument("--off-peak", dest="off_peak", action="store_const", const="on")
        parser.add_argument("--image-refs", dest="image_refs", help="default: what the model needs")
        parser.add_argument("--video-refs", dest="video_refs", help="default: what the model needs")
        parser.add_argument("--variants", help="keepers wanted (default 1)")
        parser.add_argument("--success-rate", dest="success_rate", help="default: the model's catalog rate")
        parser.add_argument("--confidence", help="for planned takes (default 0.9)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options):
        query = {k: str(v) for k, v in options.items() if isinstance(v, str) and v is not None}
        try:
            result = estimate_from_query(query)
        except DomainError as error:
            # Exit status 1 and one line on stderr, without a traceback or a class name in front.
            self.stderr.write(f"estimate: {error.message}")
            raise SystemExit(1) from None
        if options["json"]:
            self.stdout.write(json.dumps(result.as_json()))
            return
        audio = "with audio" if result.audio else "no audio"
        lines = [
            f"{result.model}: {result.quality}, {audio}",
            f"billed length     {result.billed_seconds} s",
            f"credits per take  {result.credits_per_take}",
            f"expected takes    {result.expected_takes:.2f}  ({result.variants} keeper(s) at "
            f"{result.success_rate:.0%} success)",
            f"planned takes     {result.planned_takes}  ({result.confidence:.0%} confidence)",
            f"expected credits  {result.expected_credits}",
            f"planned credits   {result.planned_credits}",
        ]
        self.stdout.write("\n".join(lines))
