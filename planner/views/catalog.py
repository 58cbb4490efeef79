from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from keter.accounts.decorators import team_view
from keter.errors import DomainError
from planner import costing
from planner.catalog import Catalog, plan_allows_quality
from planner.estimates import estimate_from_query

COMPARE_SECONDS = (5, 10)


@require_GET
def estimate_api(request: HttpRequest) -> JsonResponse:
    """GET /api/estimate?model=…&seconds=…: the estimate command's JSON, or 400 with {"error": …}."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "sign in to use the estimate API"}, status=401)
    try:
        result = estimate_from_query(request.GET)
    except DomainError as error:
        return JsonResponse({"error": error.message, "field": error.field}, status=400)
    return JsonResponse(result.as_json())


def _price_or_none(entry, quality: str, seconds: int) -> int | None:
    needs = entry.spec.required_reference
    params = costing.TakeParams(
        seconds=seconds, quality=quality, image_refs=int(needs == "image"), video_refs=int(needs == "video")
    )
    try:
        return entry.take_cost(params).credits
    except costing.CostError:
        return None  # the model does not make this length at this quality


def catalog_rows(catalog: Catalog, *, plan, vendor: str = "", quality: str = "") -> list[dict]:
    rows = []
    for entry in catalog:
        model = entry.model
        if not model.is_active or (vendor and model.vendor != vendor):
            continue
        for q in entry.spec.qualities:
            if quality and q != quality:
                continue
            rate = float(entry.spec.success_rate)
            prices = [_price_or_none(entry, q, s) for s in COMPARE_SECONDS]
            rows.append(
                {
                    "entry": entry,
                    "quality": q,
                    "prices": prices,
                    "per_usable": [None if p is None else round(p / rate) for p in prices],
                    "cells": [(p, None if p is None else round(p / rate)) for p in prices],
                    "success_rate": rate,
                    "plan_allows": plan_allows_quality(plan, q),
                }
            )
    return rows


@require_GET
@team_view("catalog.view")
def catalog_page(request: HttpRequest) -> HttpResponse:
    catalog = Catalog.load(include_retired=False)
    vendor = request.GET.get("vendor", "")
    quality = request.GET.get("quality", "")
    vendors = sorted({e.model.vendor for e in catalog})
    qualities = [q for q in costing.QUALITY_ORDER if any(q in e.spec.qualities for e in catalog)]
    context = {
        "rows": catalog_rows(catalog, plan=request.team.plan, vendor=vendor, quality=quality),
        "vendors": vendors,
        "qualities": qualities,
        "vendor": vendor,
        "quality": quality,
        "compare_seconds": COMPARE_SECONDS,
        "plan": request.team.plan,
    }
    template = "planner/catalog.html#catalog-table" if request.htmx else "planner/catalog.html"
    return render(request, template, context)
