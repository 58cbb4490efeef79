"""The seed catalog: every video model of shared/reference/video-pricing.md, as plain dicts.

A model entry is `ModelSpec.to_dict()` plus the catalog's own columns: vendor, `price_rule`
(`PriceRule.to_dict()`), the date that price took effect, settlement flags and the simulated render speed.
Building each entry through ModelSpec and PriceRule validates the seed on import.

Prices are in Keter credits: a vendor's own credits where it publishes them, otherwise 1 US dollar = 100.
"""

from planner.costing import AddOn, ModelSpec, PriceRule

PRICE_EFFECTIVE = "2026-10-01"

# (refund on failure, refund on moderation), from the reference's "Failed generations" table. Runway is its
# web app, where moderation refuses the input before generating, so nothing is charged. Where the
# reference says nothing (Google, PixVerse on moderation; OpenAI, Luma, MiniMax, Alibaba entirely) we
# assume a failure is refunded and a moderated take is charged, the common policy and the cautious one.
REFUNDS = {
    "Runway": (True, True),
    "Kuaishou": (True, True),  # Kling API: nothing charged either way
    "PixVerse": (True, False),
    "Google": (True, False),
    "OpenAI": (True, False),
    "Luma AI": (True, False),
    "MiniMax": (True, False),
    "Alibaba": (True, False),
}


def _model(*, vendor: str, spec: ModelSpec, rule: PriceRule, render_seconds_per_output_second: int) -> dict:
    refund_on_failure, refund_on_moderation = REFUNDS[vendor]
    return spec.to_dict() | {
        "vendor": vendor,
        "price_rule": rule.to_dict(),
        "price_effective": PRICE_EFFECTIVE,
        # Vendors publish no success rates; practitioners keep one clip in three or four.
        "success_rate_is_estimate": True,
        "refund_on_failure": refund_on_failure,
        "refund_on_moderation": refund_on_moderation,
        "render_seconds_per_output_second": render_seconds_per_output_second,
    }


# Where the reference gives no quality, a model is listed at its vendor's usual output (Runway 720p, Kling
# 1080p). Qualities are listed low to high, so the default is the cheapest.
PIXVERSE_TIERS = {
    "360p": {5: 45, 8: 90},
    "540p": {5: 45, 8: 90},
    "720p": {5: 60, 8: 120},
    "1080p": {5: 120, 8: 240},
}
PIXVERSE_EXTRAS = {
    "multipliers": {"fast_motion": 2},
    "add_ons": {"sound_effects": AddOn(credits=10, per_started_seconds=5)},
}
LUMA_UPSCALE = {"upscale_4k": AddOn(credits=20)}

MODELS = [
    _model(
        vendor="Runway",
        spec=ModelSpec(
            slug="runway-gen4-turbo",
            name="Runway Gen-4 Turbo",
            qualities=("720p",),
            lengths=(5, 10),
            required_reference="image",
            success_rate=0.35,
        ),
        rule=PriceRule(per_second={"720p": 5}),
        render_seconds_per_output_second=3,
    ),
    _model(
        vendor="Runway",
        spec=ModelSpec(
            slug="runway-gen4",
            name="Runway Gen-4",
            qualities=("720p",),
            lengths=(5, 10),
            required_reference="image",
            success_rate=0.4,
        ),
        rule=PriceRule(per_second={"720p": 12}),
        render_seconds_per_output_second=8,
    ),
    # Some guides say 25 credits/s; the seed follows Runway's own help page.
    _model(
        vendor="Runway",
        spec=ModelSpec(
            slug="runway-gen45",
            name="Runway Gen-4.5",
            qualities=("720p",),
            min_seconds=2,
            max_seconds=10,
            success_rate=0.45,
        ),
        rule=PriceRule(per_second={"720p": 12}),
        render_seconds_per_output_second=9,
    ),
    _model(
        vendor="Runway",
        spec=ModelSpec(
            slug="runway-gen3-alpha",
            name="Runway Gen-3 Alpha",
            qualities=("720p",),
            lengths=(5, 10),
            success_rate=0.3,
        ),
        rule=PriceRule(per_second={"720p": 10}),
        render_seconds_per_output_second=6,
    ),
    _model(
        vendor="Runway",
        spec=ModelSpec(
            slug="runway-gen3-alpha-turbo",
            name="Runway Gen-3 Alpha Turbo",
            qualities=("720p",),
            lengths=(5, 10),
            success_rate=0.28,
        ),
        rule=PriceRule(per_second={"720p": 5}),
        render_seconds_per_output_second=3,
    ),
    _model(
        vendor="Runway",
        spec=ModelSpec(
            slug="runway-aleph",
            name="Runway Aleph",
            qualities=("720p",),
            max_seconds=5,
            required_reference="video",
            success_rate=0.5,
        ),
        rule=PriceRule(per_second={"720p": 15}),
        render_seconds_per_output_second=10,
    ),
    # Act-One is driven by a performance video in Runway's app; the reference names no reference
    # requirement, so the seed does not enforce one.
    _model(
        vendor="Runway",
        spec=ModelSpec(
            slug="runway-act-one",
            name="Runway Act-One on Gen-3 Alpha",
            qualities=("720p",),
            max_seconds=30,
            success_rate=0.5,
        ),
        rule=PriceRule(per_second={"720p": 10}, minimum=50),
        render_seconds_per_output_second=6,
    ),
    _model(
        vendor="Runway",
        spec=ModelSpec(
            slug="runway-act-one-turbo",
            name="Runway Act-One on Gen-3 Alpha Turbo",
            qualities=("720p",),
            max_seconds=30,
            success_rate=0.45,
        ),
        rule=PriceRule(per_second={"720p": 5}, minimum=25),
        render_seconds_per_output_second=3,
    ),
    # Published with audio (40/s, 60/s at 4K) and half without: stored as the silent rate times an audio
    # multiplier of 2.
    _model(
        vendor="Google",
        spec=ModelSpec(
            slug="veo-3-1",
            name="Google Veo 3.1 Standard",
            qualities=("720p", "1080p", "4K"),
            lengths=(4, 6, 8),
            supports_audio=True,
            audio_by_default=True,
            success_rate=0.45,
        ),
        rule=PriceRule(per_second={"720p": 20, "1080p": 20, "4K": 30}, multipliers={"audio": 2}),
        render_seconds_per_output_second=10,
    ),
    # Only a with-audio price is published, so switching audio off does not lower the estimate.
    _model(
        vendor="Google",
        spec=ModelSpec(
            slug="veo-3-1-fast",
            name="Google Veo 3.1 Fast",
            qualities=("720p", "1080p", "4K"),
            lengths=(4, 6, 8),
            supports_audio=True,
            audio_by_default=True,
            success_rate=0.35,
        ),
        rule=PriceRule(per_second={"720p": 10, "1080p": 12, "4K": 30}),
        render_seconds_per_output_second=5,
    ),
    # Lengths are the reference's assumption (5 s or 10 s); audio is off by default, the price without it
    # being the base one.
    _model(
        vendor="Kuaishou",
        spec=ModelSpec(
            slug="kling-2-6",
            name="Kling 2.6",
            qualities=("1080p",),
            lengths=(5, 10),
            supports_audio=True,
            success_rate=0.4,
        ),
        rule=PriceRule(per_second={"1080p": 7}, multipliers={"audio": 2}),
        render_seconds_per_output_second=8,
    ),
    _model(
        vendor="Alibaba",
        spec=ModelSpec(
            slug="wan-2-6",
            name="Wan 2.6",
            qualities=("480p", "720p", "1080p"),
            lengths=(5, 10),
            success_rate=0.3,
        ),
        rule=PriceRule(per_second={"480p": 5, "720p": 10, "1080p": 15}),
        render_seconds_per_output_second=7,
    ),
    _model(
        vendor="OpenAI",
        spec=ModelSpec(
            slug="sora-2",
            name="OpenAI Sora 2",
            qualities=("720p",),
            lengths=(4, 8, 12),
            success_rate=0.35,
        ),
        rule=PriceRule(per_second={"720p": 10}),
        render_seconds_per_output_second=8,
    ),
    _model(
        vendor="OpenAI",
        spec=ModelSpec(
            slug="sora-2-pro",
            name="OpenAI Sora 2 Pro",
            qualities=("720p", "1024p"),
            lengths=(4, 8, 12),
            success_rate=0.45,
        ),
        rule=PriceRule(per_second={"720p": 30, "1024p": 50}),
        render_seconds_per_output_second=12,
    ),
    # Duration-tier models accept any whole length up to their largest tier and bill the next tier up.
    _model(
        vendor="Luma AI",
        spec=ModelSpec(
            slug="luma-ray2",
            name="Luma Ray2",
            qualities=("720p", "1080p"),
            max_seconds=10,
            options=("upscale_4k",),
            success_rate=0.35,
        ),
        rule=PriceRule(
            tiers={"720p": {5: 160, 10: 320}, "1080p": {5: 170, 10: 340}},
            add_ons=LUMA_UPSCALE,
        ),
        render_seconds_per_output_second=6,
    ),
    _model(
        vendor="Luma AI",
        spec=ModelSpec(
            slug="luma-ray2-flash",
            name="Luma Ray2 Flash",
            qualities=("720p", "1080p"),
            max_seconds=10,
            options=("upscale_4k",),
            success_rate=0.28,
        ),
        rule=PriceRule(
            tiers={"720p": {5: 55, 10: 110}, "1080p": {5: 65, 10: 130}},
            add_ons=LUMA_UPSCALE,
        ),
        render_seconds_per_output_second=3,
    ),
    # Luma caps image-to-video at 5 s and text-to-video at 10 s, then extends; the tiers price up to 20 s
    # as one take, so the seed allows 1-20 s whatever the references.
    _model(
        vendor="Luma AI",
        spec=ModelSpec(
            slug="luma-ray3",
            name="Luma Ray3",
            qualities=("draft", "540p"),
            max_seconds=20,
            options=("hdr",),
            success_rate=0.4,
        ),
        rule=PriceRule(
            tiers={
                "draft": {5: 60, 10: 120, 15: 180, 20: 240},
                "540p": {5: 160, 10: 320, 15: 480, 20: 640},
            },
            multipliers={"hdr": 4},
        ),
        render_seconds_per_output_second=9,
    ),
    _model(
        vendor="PixVerse",
        spec=ModelSpec(
            slug="pixverse-v5",
            name="PixVerse V5",
            qualities=tuple(PIXVERSE_TIERS),
            max_seconds=8,
            options=("fast_motion", "sound_effects"),
            success_rate=0.35,
        ),
        rule=PriceRule(tiers=PIXVERSE_TIERS, **PIXVERSE_EXTRAS),
        render_seconds_per_output_second=4,
    ),
    _model(
        vendor="PixVerse",
        spec=ModelSpec(
            slug="pixverse-v4-5",
            name="PixVerse V4.5",
            qualities=tuple(PIXVERSE_TIERS),
            max_seconds=8,
            options=("fast_motion", "sound_effects"),
            success_rate=0.3,
        ),
        rule=PriceRule(tiers=PIXVERSE_TIERS, **PIXVERSE_EXTRAS),
        render_seconds_per_output_second=4,
    ),
    _model(
        vendor="Kuaishou",
        spec=ModelSpec(
            slug="kling-2-5-turbo-pro",
            name="Kling 2.5 Turbo Pro",
            qualities=("1080p",),
            max_seconds=10,
            success_rate=0.35,
        ),
        rule=PriceRule(tiers={"1080p": {5: 35, 10: 70}}),
        render_seconds_per_output_second=5,
    ),
    _model(
        vendor="MiniMax",
        spec=ModelSpec(
            slug="hailuo-02",
            name="MiniMax Hailuo-02",
            qualities=("768p", "1080p"),
            max_seconds=10,
            quality_max_seconds={"1080p": 6},
            success_rate=0.3,
        ),
        rule=PriceRule(tiers={"768p": {6: 28, 10: 56}, "1080p": {6: 49}}),
        render_seconds_per_output_second=7,
    ),
]
