import uuid
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from keter.accounts.decorators import team_view
from keter.charts import line_chart
from keter.errors import DomainError
from keter.exports import csv_response, in_snapshot, xlsx_response
from keter.forms import add_domain_error
from ledger import reports, selectors
from ledger.errors import IdempotencyConflict
from ledger.forms import AdjustForm, GrantForm, ReportPeriodForm, TopUpForm, TransactionFilterForm
from ledger.journal import journal_chunks
from ledger.periods import start_of_day
from ledger.services import ledger_adjust, ledger_grant, ledger_top_up

PAGE_SIZE = 25


def _transaction_criteria(filters: TransactionFilterForm) -> dict:
    """The valid filters as selector arguments; the invalid ones show their message and are ignored."""
    criteria = {}
    if filters.is_bound:
        filters.is_valid()
        criteria = {name: value for name, value in filters.cleaned_data.items() if value not in (None, "")}
    criteria["reference"] = criteria.pop("q", "")
    return criteria


def _credits_page(request: HttpRequest, *, status: int = 200, **action_forms) -> HttpResponse:
    team = request.team
    filters = TransactionFilterForm(request.GET or None)
    if filters.is_bound and not filters.is_valid():
        status = 422 if status == 200 else status
    criteria = _transaction_criteria(filters)
    transactions = selectors.team_transactions(team, **criteria)
    page = Paginator(transactions, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filters": filters,
        "page": page,
        "query": query.urlencode(),
        "can_export": request.membership.can("reports.export"),
    }
    if request.htmx and request.method == "GET":  # a filter: only the transactions are rendered
        return render(request, "ledger/credits.html#transactions", context, status=status)
    holds = selectors.pending_holds(team)
    context |= {
        "balance": selectors.team_balance(team),
        "lots": selectors.active_lots(team),
        "expired_lots": selectors.expired_lots(team),
        "holds": holds[:20],
        "open_holds": holds.count(),
        "can_manage": request.membership.can("credits.manage"),
        "top_up_form": action_forms.get("top_up_form") or TopUpForm(),
        "grant_form": action_forms.get("grant_form") or GrantForm(),
        "adjust_form": action_forms.get("adjust_form") or AdjustForm(),
    }
    return render(request, "ledger/credits.html", context, status=status)


@require_GET
@team_view("credits.view")
def credits(request: HttpRequest) -> HttpResponse:
    """The team's credits: balance, lots, holds and every transaction, filterable."""
    return _credits_page(request)


def _refused(form, error: DomainError) -> None:
    """Show the refusal next to its field. The service stored it under this form's key, so the form
    gets a new key: the corrected request is a new one, not a retry of the refused one."""
    add_domain_error(form, error)
    if not isinstance(error, IdempotencyConflict):
        form.data = form.data.copy()
        form.data["request_token"] = str(uuid.uuid4())


@require_POST
@team_view("credits.manage")
def top_up(request: HttpRequest) -> HttpResponse:
    form = TopUpForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            lot = ledger_top_up(
                team=request.team,
                credits=data["credits"],
                key=f"credits:top-up:{data['request_token']}",
                reference=data["reference"],
                actor=request.user,
            )
        except DomainError as error:
            _refused(form, error)
        else:
            messages.success(request, f"Added {lot.credits:,} purchased credits. They never expire.")
            return redirect("ledger:credits", request.team.slug)
    return _credits_page(request, top_up_form=form, status=422)


@require_POST
@team_view("credits.manage")
def grant(request: HttpRequest) -> HttpResponse:
    form = GrantForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        expires_on = data["expires_on"]
        try:
            lot = ledger_grant(
                team=request.team,
                credits=data["credits"],
                key=f"credits:grant:{data['request_token']}",
                expires_at=start_of_day(expires_on) if expires_on else None,
                memo=data["memo"],
                actor=request.user,
            )
        except DomainError as error:
            if error.field == "expires_at":
                error.field = "expires_on"
            _refused(form, error)
        else:
            until = f", usable until {expires_on.isoformat()}" if expires_on else ""
            messages.success(request, f"Granted {lot.credits:,} promotional credits{until}.")
            return redirect("ledger:credits", request.team.slug)
    return _credits_page(request, grant_form=form, status=422)


@require_POST
@team_view("credits.manage")
def adjust(request: HttpRequest) -> HttpResponse:
    form = AdjustForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            ledger_adjust(
                team=request.team,
                credits=data["credits"],
                key=f"credits:adjust:{data['request_token']}",
                actor=request.user,
                reason=data["reason"],
            )
        except DomainError as error:
            _refused(form, error)
        else:
            messages.success(request, f"Adjusted available credits by {data['credits']:+,}.")
            return redirect("ledger:credits", request.team.slug)
    return _credits_page(request, adjust_form=form, status=422)


@require_GET
@team_view("reports.view")
def balance_report(request: HttpRequest) -> HttpResponse:
    """Balance over time, the runway at the trailing burn, and the exports, for the days in the URL."""
    team = request.team
    form = ReportPeriodForm(request.GET or None)
    date_from, date_to = form.period()
    if not form.is_bound:  # show the period the page covers in the fields
        form = ReportPeriodForm(initial={"date_from": date_from, "date_to": date_to})
    days = reports.daily_balances(team, date_from=date_from, date_to=date_to)
    chart = line_chart(
        [(day.day, day.available) for day in days],
        title=f"Available credits of {team.name}, end of each day",
        series="Available at the end of the day",
    )
    export_query = {"date_from": date_from.isoformat(), "date_to": date_to.isoformat()}
    context = {
        "form": form,
        "date_from": date_from,
        "date_to": date_to,
        "days": days,
        "chart": chart,
        "runway": reports.runway(team),
        "export_query": urlencode(export_query),
        "journal_query": urlencode({"until": date_to.isoformat()}),
        "can_export": request.membership.can("reports.export"),
    }
    status = 422 if form.is_bound and not form.is_valid() else 200
    return render(request, "ledger/balance_report.html", context, status=status)


def _export_filters(request: HttpRequest) -> tuple[dict, HttpResponse | None]:
    filters = TransactionFilterForm(request.GET or None)
    if filters.is_bound and not filters.is_valid():
        problems = "\n".join(f"{name}: {errors[0]}" for name, errors in filters.errors.items())
        return {}, HttpResponse(problems, status=422, content_type="text/plain; charset=utf-8")
    return _transaction_criteria(filters), None


def _export_name(request: HttpRequest, criteria: dict, extension: str) -> str:
    span = "-".join(criteria[d].isoformat() for d in ("date_from", "date_to") if criteria.get(d))
    return f"{request.team.slug}-ledger{'-' + span if span else ''}.{extension}"


@require_GET
@team_view("reports.export")
def register_csv(request: HttpRequest) -> HttpResponse:
    """Every entry of the filtered transactions as CSV, streamed: memory stays flat whatever the size."""
    criteria, refused = _export_filters(request)
    if refused:
        return refused
    rows = in_snapshot(lambda: reports.register_rows(request.team, **criteria))
    name = _export_name(request, criteria, "csv")
    return csv_response(reports.REGISTER_COLUMNS, rows, name, text_columns=reports.REGISTER_TEXT_COLUMNS)


@require_GET
@team_view("reports.export")
def register_xlsx(request: HttpRequest) -> HttpResponse:
    """The same rows and columns as the CSV, as a spreadsheet with real numbers and dates."""
    criteria, refused = _export_filters(request)
    if refused:
        return refused
    rows = in_snapshot(lambda: reports.register_rows(request.team, text_dates=False, **criteria))
    # Counted first, so a period too large for a spreadsheet is refused before any of it is written.
    total = reports.register_entries(request.team, **criteria).count()
    csv_url = request.build_absolute_uri(
        reverse("ledger:register-csv", args=[request.team.slug]) + f"?{request.GET.urlencode()}"
    )
    name = _export_name(request, criteria, "xlsx")
    return xlsx_response(reports.REGISTER_COLUMNS, rows, name, total=total, csv_url=csv_url)


@require_GET
@team_view("reports.export")
def journal(request: HttpRequest) -> HttpResponse:
    """The team's accounting journal (beancount), optionally up to a day: `?until=YYYY-MM-DD`."""
    form = ReportPeriodForm({"date_to": request.GET.get("until", "")})
    if not form.is_valid():
        return HttpResponse("until: Enter a date like 2026-12-31", status=422, content_type="text/plain")
    until = form.cleaned_data["date_to"]
    team = request.team
    chunks = in_snapshot(lambda: journal_chunks(team=team, until=until))
    response = StreamingHttpResponse(chunks, content_type="text/plain; charset=utf-8")
    name = f"{team.slug}-journal{'-' + until.isoformat() if until else ''}.beancount"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
