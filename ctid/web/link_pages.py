"""The pages behind e-mailed links, for people without a login: accept/reject a dispatched
incident, rate the service. GET only shows (mail scanners open links); POST acts, and needs our
Origin and a double-submit cookie bound to the link's token."""

from __future__ import annotations

import re
from typing import Literal

import structlog
from aiohttp import web

from ctid.core.errors import (
    LinkExpiredError,
    RecordMissingError,
    RequestRefusedError,
    StateConflictError,
    TransitionError,
)
from ctid.i18n import N_, Translator
from ctid.tickets.errors import (
    TokenError,
)
from ctid.tickets.links import (
    DispatchRequest,
    SurveyRequest,
)
from ctid.tickets.vocabulary import STATUS_WORDS
from ctid.web.auth import PageFormTokens
from ctid.web.edge import Edge, HttpError, form_fields, html_response, translator_of
from ctid.web.html import Markup, join, render, tag
from ctid.web.pages import layout
from ctid.web.ports import (
    LinkPort,
)

log = structlog.get_logger(__name__)

DISPATCH_PREFIX = "/incidents/respond/"
SURVEY_PREFIX = "/survey/"
LINK_PREFIXES = (DISPATCH_PREFIX, SURVEY_PREFIX)
LINK_COOKIE = "ctid_link"
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_\-.]{1,1024}$")
MAX_REASON = 2000
MAX_COMMENT = 2000


def is_link_path(path: str) -> bool:
    return path.startswith(LINK_PREFIXES)


def _status(t: Translator, status: str) -> str:
    known = STATUS_WORDS.get(status)
    return t.gettext(known) if known else status.replace("_", " ")


class LinkPages:
    """Routes for `/incidents/respond/{token}` and `/survey/{token}`."""

    def __init__(self, edge: Edge, links: LinkPort | None, *, secure_cookies: bool) -> None:
        self._edge = edge
        self._links = links
        self._form_tokens: PageFormTokens | None = None
        self._secure = secure_cookies

    def start(self, secret: bytes) -> None:
        """Key the form tokens (the web secret is resolved when the server starts)."""
        self._form_tokens = PageFormTokens(secret, "ctid-link-form")

    @property
    def _forms(self) -> PageFormTokens:
        if self._form_tokens is None:
            raise RuntimeError("LinkPages.start was not called")
        return self._form_tokens

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get(DISPATCH_PREFIX + "{token}", self._dispatch_page)
        router.add_post(DISPATCH_PREFIX + "{token}", self._dispatch_post)
        router.add_get(SURVEY_PREFIX + "{token}", self._survey_page)
        router.add_post(SURVEY_PREFIX + "{token}", self._survey_post)

    # ------------------------------------------------------------------ shared

    def _page(self, t: Translator, title: str, body: Markup, status: int = 200) -> web.Response:
        resp = html_response(
            layout(
                t=t,
                site=self._edge.site(),
                title=title,
                main=tag("section", body, class_="card"),
            ),
            status,
        )
        # The token is a credential: never let it leak to another site in a Referer.
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Robots-Tag"] = "noindex, nofollow"
        return resp

    def _message(self, t: Translator, title: str, text: str, status: int) -> web.Response:
        return self._page(t, title, render("<h1>$t</h1><p>$x</p>", t=title, x=text), status)

    def _failed(self, t: Translator, exc: Exception) -> web.Response:
        if isinstance(exc, LinkExpiredError):
            return self._message(
                t,
                t.gettext("This link has expired"),
                t.gettext("{why} Ask the service desk for a new one.", why=str(exc)),
                410,
            )
        if isinstance(exc, TokenError):
            return self._message(
                t,
                t.gettext("This link is not valid"),
                t.gettext(
                    "The link is incomplete or was changed. Open it again from the e-mail, "
                    "copying the whole address."
                ),
                400,
            )
        if isinstance(exc, RecordMissingError):
            return self._message(t, t.gettext("Not found"), str(exc), 404)
        if isinstance(exc, RequestRefusedError):
            return self._message(t, t.gettext("Not possible"), str(exc), 400)
        return self._message(t, t.gettext("Not possible any more"), str(exc), 409)

    def _token(self, request: web.Request) -> str:
        return request.match_info["token"]

    def _with_form_cookie(self, resp: web.Response, path: str, nonce: str) -> web.Response:
        resp.set_cookie(
            LINK_COOKIE,
            nonce,
            max_age=3600,
            path=path.rstrip("/"),
            httponly=True,
            samesite="Strict",
            secure=self._secure or None,
        )
        return resp

    async def _checked_form(self, request: web.Request, token: str) -> dict[str, str] | None:
        form = await form_fields(request)
        if not self._forms.check(request.cookies.get(LINK_COOKIE), form.get("csrf_token"), token):
            log.warning("link_form_refused", path=request.path.split("/")[1])
            return None
        return form

    def _expired_form(self, t: Translator) -> web.Response:
        return self._message(
            t,
            t.gettext("This form has expired"),
            t.gettext("Open the link from the e-mail again and send the form from that page."),
            403,
        )

    def _port(self) -> LinkPort:
        if self._links is None:
            raise HttpError(404, "links are not available")
        return self._links

    # ------------------------------------------------------------------ dispatch

    async def _dispatch_page(self, request: web.Request) -> web.StreamResponse:
        token = self._token(request)
        t = translator_of(request)
        try:
            if not _TOKEN_SHAPE.match(token):
                raise TokenError("bad token")
            req = await self._port().dispatch_request(token)
        except (TokenError, LinkExpiredError, RecordMissingError) as exc:
            return self._failed(t, exc)
        decision = request.query.get("decision", "")
        if not req.waiting:  # no form, so no form cookie either
            return self._page(t, req.number, self._dispatch_body(t, req, decision, ""))
        nonce, form_token = self._forms.issue(token)
        body = self._dispatch_body(t, req, decision, form_token)
        return self._with_form_cookie(self._page(t, req.number, body), DISPATCH_PREFIX, nonce)

    def _dispatch_facts(self, t: Translator, req: DispatchRequest) -> Markup:
        facts = [
            (N_("Summary"), req.summary),
            (N_("Priority"), req.priority or ""),
            (N_("Group"), req.group),
            (N_("Assignee"), req.assignee or ""),
            (N_("Caller"), req.caller_name or ""),
            (N_("Phone"), req.caller_phone or ""),
            (N_("Office"), req.caller_office or ""),
            (N_("Status"), _status(t, req.status)),
            (N_("Link valid until"), t.when(req.expires_at, "short")),
        ]
        dl = join(join([tag("dt", t.gettext(k)), tag("dd", v)]) for k, v in facts if v)
        return render(
            """<dl class="facts">$dl</dl><h3>$l_desc</h3><div class="prewrap">$desc</div>""",
            dl=dl,
            l_desc=t.gettext("Description"),
            desc=req.description or "—",
        )

    def _dispatch_body(
        self, t: Translator, req: DispatchRequest, decision: str, form_token: str
    ) -> Markup:
        if not req.waiting:
            form: Markup = tag(
                "p",
                t.gettext(
                    "This incident is no longer waiting for {group} (it is {status}). Nothing "
                    "to do here.",
                    group=req.group,
                    status=_status(t, req.status),
                ),
                class_="notice",
                id="link-state",
            )
        else:
            form = render(
                """<form method="post" class="respond-form" id="respond-form">
  <input type="hidden" name="csrf_token" value="$token">
  <fieldset>
    <legend>$l_decision</legend>
    <label class="check"><input type="radio" name="decision" value="accept"$acc> $l_accept</label>
    <label class="check"><input type="radio" name="decision" value="reject"$rej> $l_reject</label>
  </fieldset>
  <label>$l_reason
    <textarea name="reason" rows="4" maxlength="$max"></textarea>
  </label>
  <button type="submit">$send</button>
</form>""",
                l_decision=t.gettext("Your decision"),
                l_accept=t.gettext("Accept — I take this incident"),
                l_reject=t.gettext("Reject — send it back to the service desk"),
                l_reason=t.gettext("Reason (required to reject)"),
                send=t.gettext("Send"),
                token=form_token,
                acc=Markup(" checked") if decision == "accept" else "",
                rej=Markup(" checked") if decision == "reject" else "",
                max=MAX_REASON,
            )
        return render(
            """<h1>$title <span class="mono">$number</span></h1>
$facts
$form""",
            title=t.gettext("Dispatched incident"),
            number=req.number,
            facts=self._dispatch_facts(t, req),
            form=form,
        )

    async def _dispatch_post(self, request: web.Request) -> web.StreamResponse:
        token = self._token(request)
        t = translator_of(request)
        if not _TOKEN_SHAPE.match(token):
            return self._failed(t, TokenError("bad token"))
        form = await self._checked_form(request, token)
        if form is None:
            return self._expired_form(t)
        decision = form.get("decision", "")
        reason = form.get("reason", "").strip()
        if decision not in ("accept", "reject"):
            return self._message(
                t, t.gettext("Choose accept or reject"), t.gettext("Go back and pick one."), 400
            )
        if decision == "reject" and not reason:
            return self._message(
                t,
                t.gettext("A reason is required"),
                t.gettext("Go back and say why you reject."),
                400,
            )
        if len(reason) > MAX_REASON:
            return self._message(
                t,
                t.gettext("The reason is too long"),
                t.gettext("At most {n} characters.", n=MAX_REASON),
                400,
            )
        choice: Literal["accept", "reject"] = "accept" if decision == "accept" else "reject"
        try:
            req = await self._port().respond(token, choice, reason or None)
        except (
            TokenError,
            RecordMissingError,
            RequestRefusedError,
            StateConflictError,
            TransitionError,
        ) as exc:
            return self._failed(t, exc)
        log.info("dispatch_answered_by_link", number=req.number, decision=choice)
        if choice == "accept":
            title = t.gettext("{number} accepted", number=req.number)
            text = t.gettext("Thank you. The incident is accepted.")
        else:
            title = t.gettext("{number} rejected", number=req.number)
            text = t.gettext(
                "Thank you. The incident is rejected and sent back to the service desk."
            )
        return self._message(t, title, text, 200)

    # ------------------------------------------------------------------ survey

    async def _survey_page(self, request: web.Request) -> web.StreamResponse:
        token = self._token(request)
        t = translator_of(request)
        try:
            if not _TOKEN_SHAPE.match(token):
                raise TokenError("bad token")
            req = await self._port().survey(token)
        except (TokenError, LinkExpiredError, RecordMissingError) as exc:
            return self._failed(t, exc)
        title = t.gettext("Your opinion")
        if req.rated:
            return self._page(t, title, self._survey_body(t, req, ""))
        nonce, form_token = self._forms.issue(token)
        return self._with_form_cookie(
            self._page(t, title, self._survey_body(t, req, form_token)), SURVEY_PREFIX, nonce
        )

    def _survey_body(self, t: Translator, req: SurveyRequest, form_token: str) -> Markup:
        head = render(
            """<h1>$title</h1>
<p>$l_incident <span class="mono">$number</span>: $summary</p>""",
            title=t.gettext("How did we do?"),
            l_incident=t.gettext("Incident"),
            number=req.number,
            summary=req.summary,
        )
        if req.rated:
            return join(
                [head, tag("p", t.gettext("You rated this already. Thank you!"), class_="notice")]
            )
        stars = join(
            render(
                """<label class="check"><input type="radio" name="score" value="$n" required> $n — $word</label>""",
                n=n,
                word=t.gettext(word),
            )
            for n, word in (
                (5, N_("very satisfied")),
                (4, N_("satisfied")),
                (3, N_("neutral")),
                (2, N_("unsatisfied")),
                (1, N_("very unsatisfied")),
            )
        )
        form = render(
            """<form method="post" id="survey-form">
  <input type="hidden" name="csrf_token" value="$token">
  <fieldset><legend>$l_rating</legend>$stars</fieldset>
  <label>$l_comment<textarea name="comment" rows="4" maxlength="$max"></textarea></label>
  <button type="submit">$send</button>
</form>""",
            l_rating=t.gettext("Your rating"),
            l_comment=t.gettext("Comment (optional)"),
            send=t.gettext("Send"),
            token=form_token,
            stars=stars,
            max=MAX_COMMENT,
        )
        return join([head, form])

    async def _survey_post(self, request: web.Request) -> web.StreamResponse:
        token = self._token(request)
        t = translator_of(request)
        if not _TOKEN_SHAPE.match(token):
            return self._failed(t, TokenError("bad token"))
        form = await self._checked_form(request, token)
        if form is None:
            return self._expired_form(t)
        score_text = form.get("score", "").strip()
        comment = form.get("comment", "").strip()
        if score_text not in ("1", "2", "3", "4", "5"):
            return self._message(
                t, t.gettext("Pick a rating"), t.gettext("Choose from 1 to 5."), 400
            )
        if len(comment) > MAX_COMMENT:
            return self._message(
                t,
                t.gettext("The comment is too long"),
                t.gettext("At most {n} characters.", n=MAX_COMMENT),
                400,
            )
        try:
            await self._port().rate(token, int(score_text), comment or None)
        except (
            TokenError,
            RecordMissingError,
            RequestRefusedError,
            StateConflictError,
            TransitionError,
        ) as exc:
            return self._failed(t, exc)
        log.info("survey_answered_by_link", score=int(score_text))
        return self._message(
            t, t.gettext("Thank you!"), t.gettext("Your rating was recorded."), 200
        )
