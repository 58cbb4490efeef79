from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from keter.accounts.decorators import team_view
from keter.charts import stacked_bars
from keter.exports import csv_response, xlsx_response
from ledger.reports import runway
from planner import costing
from planner.forms import ReportFiltersForm
from planner.models import VideoModel
from planner.reports import (
    COST_COLUMNS,
    DIMENSIONS,
    USAGE_COLUMNS,
    cost_report,
    report_snapshot,
    usage_report,
)


def chart_table(months: list[str], series: list[tuple[str, list[int]]]) -> list[tuple[str, list[int]]]:
    """The chart's figures as table rows (a month, then each model's credits), so both always agree."""
    return [(month, [values[i] for _, values in series]) for i, month in enumerate(months)]


def _filters_form(request: HttpRequest) -> ReportFiltersForm:
    return ReportFiltersForm(
        request.GET or None,
        team=request.team,
        models=VideoModel.objects.order_by("name"),
        qualities=costing.QUALITY_ORDER,
    )


@require_GET
@team_view("reports.view")
def reports_page(request: HttpRequest) -> HttpResponse:
    form = _filters_form(request)
    filters = form.filters()
    with report_snapshot():
        usage = usage_report(request.team, filters)
        costs = cost_report(request.team, project_id=filters.project_id, filters=filters, usage=usage)
    months, series = usage.months, usage.series
    query = request.GET.urlencode()
    context = {
        "form": form,
        "filters": filters,
        "usage_columns": USAGE_COLUMNS,
        "usage": [(label, usage.by[key]) for key, label in DIMENSIONS.items()],
        "total": usage.total,
        "chart": stacked_bars(months, series, title="Credits captured per month, by model")
        if months
        else None,
        "chart_rows": chart_table(months, series),
        "chart_models": [name for name, _ in series],
        "costs": costs,
        "cost_columns": COST_COLUMNS,
        "runway": runway(request.team),
        "query": query,
        "balance_query": urlencode({"date_from": filters.date_from, "date_to": filters.date_to}),
        "can_export": request.membership.can("reports.export"),
    }
    status = 422 if form.is_bound and not form.is_valid() else 200
    return render(request, "planner/reports.html", context, status=status)


def _usage_table(request: HttpRequest):
    form = _filters_form(request)
    filters = form.filters()
    dimension = request.GET.get("by", "month")
    if dimension not in DIMENSIONS:
        dimension = "month"
    label = DIMENSIONS[dimension]
    usage = usage_report(request.team, filters)
    rows = [row.cells() for row in usage.by[dimension]]
    rows.append(usage.total.cells())
    name = f"{slugify(request.team.name)}-usage-by-{dimension}-{filters.date_from}-{filters.date_to}"
    return [label.lower(), *USAGE_COLUMNS], rows, name


@require_GET
@team_view("reports.export")
def usage_csv(request: HttpRequest) -> HttpResponse:
    columns, rows, name = _usage_table(request)
    return csv_response(columns, rows, f"{name}.csv")


@require_GET
@team_view("reports.export")
def usage_xlsx(request: HttpRequest) -> HttpResponse:
    columns, rows, name = _usage_table(request)
    csv_url = reverse("planner:usage-csv", args=[request.team.slug]) + f"?{request.GET.urlencode()}"
    return xlsx_response(columns, rows, f"{name}.xlsx", csv_url=request.build_absolute_uri(csv_url))


@require_GET
@team_view("reports.export")
def costs_csv(request: HttpRequest) -> HttpResponse:
    filters = _filters_form(request).filters()
    rows = [row.cells() for row in cost_report(request.team, project_id=filters.project_id, filters=filters)]
    return csv_response(COST_COLUMNS, rows, f"{slugify(request.team.name)}-cost-report.csv")
