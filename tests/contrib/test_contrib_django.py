"""The Django integration: settings-driven client, deps invalidated once writes commit.

Django's own ``TestCase`` / ``TransactionTestCase`` run under pytest against
the in-process reference gateway; each test gets a fresh gateway through
``override_settings(CACHECORE=...)``, which also proves the client is rebuilt
when the setting changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("django")
openai = pytest.importorskip("openai")

import django_settings  # noqa: E402

django_settings.configure()

from cc_django_app.models import (  # noqa: E402
    Article,
    ArticleProxy,
    Comment,
    Note,
    Stamped,
    Untracked,
)
from contrib_helpers import MODEL  # noqa: E402
from django.core import checks  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import TestCase, TransactionTestCase, override_settings  # noqa: E402
from django.test.utils import setup_test_environment, teardown_test_environment  # noqa: E402
from django_settings import GATEWAY_URL, SECRET, TENANT  # noqa: E402

from cachecore import InvalidateResult  # noqa: E402
from cachecore._wire import INVALIDATE_PATH  # noqa: E402
from cachecore.contrib.django import (  # noqa: E402
    close_client,
    deps_for,
    get_client,
    invalidate_on_commit,
    invalidated,
    row_dep,
    table_dep,
    track,
    tracked_models,
)
from cachecore.contrib.django.apps import check_settings  # noqa: E402
from cachecore.testing import Fault, GatewayConfig, ReferenceGateway  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _test_database() -> Iterator[None]:
    """What Django's test runner does around a run: test environment and test database."""
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    yield
    connection.creation.destroy_test_db(old_name, verbosity=0)
    teardown_test_environment()
    close_client()


def _atomic_then_fail(work: Callable[[], object]) -> None:
    with transaction.atomic():
        work()
        raise RuntimeError("roll back")


def rolled_back(work: Callable[[], object]) -> None:
    """Run ``work`` in ``transaction.atomic()`` (a savepoint when nested) and roll it back."""
    with pytest.raises(RuntimeError, match="roll back"):
        _atomic_then_fail(work)


class GatewayMixin:
    """Per test: a fresh gateway behind ``settings.CACHECORE``, an OpenAI client, the signals."""

    gw: ReferenceGateway
    events: list[dict[str, Any]]
    extra_settings: dict[str, Any] = {}  # noqa: RUF012

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        self.gw = ReferenceGateway(GatewayConfig(secret=SECRET, l2_threshold=None))
        self.settings_override = override_settings(
            CACHECORE={
                "GATEWAY_URL": GATEWAY_URL,
                "TOKEN": self.gw.mint_token(TENANT),
                "INNER_TRANSPORT": self.gw.transport(),
                "MAX_RETRIES": 0,
                **self.extra_settings,
            }
        )
        self.settings_override.enable()
        self.addCleanup(self.settings_override.disable)  # type: ignore[attr-defined]
        self.events = []

        def on_invalidated(**kwargs: Any) -> None:
            self.events.append(kwargs)

        invalidated.connect(on_invalidated, weak=False, dispatch_uid="test-recorder")
        self.addCleanup(invalidated.disconnect, dispatch_uid="test-recorder")  # type: ignore[attr-defined]
        cc = get_client()
        self.llm = openai.OpenAI(
            base_url=cc.gateway_url + "/v1",
            api_key=self.gw.mint_token(TENANT),
            http_client=httpx.Client(transport=cc.transport),
            max_retries=0,
        )

    def ask(self, prompt: str, deps: list[str]) -> str:
        """One LLM call tagged with ``deps``; the cache status the handle saw."""
        with get_client().request_context(deps=deps) as handle:
            self.llm.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": prompt}]
            )
        assert handle.last is not None
        return handle.last.status

    def cached(self, prompt: str, deps: list[str]) -> bool:
        """Whether ``prompt`` is still cached (asking twice would otherwise re-cache it)."""
        return self.ask(prompt, deps) == "HIT_L1"


class TestTrackedModels(GatewayMixin, TestCase):
    def test_save_invalidates_table_and_row_only_after_commit(self) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            article = Article.objects.create(title="draft")
            other = Article.objects.create(title="other")
        deps = deps_for(article)
        assert deps == [
            "table:cc_django_app.article",
            f"row:cc_django_app.article:{article.pk}",
        ]
        assert self.ask("summarise the article", deps) == "MISS"
        assert self.ask("list the articles", [table_dep(Article)]) == "MISS"
        assert self.ask("summarise the other", [row_dep(other)]) == "MISS"
        self.events.clear()
        before = self.gw.stats().invalidations

        with self.captureOnCommitCallbacks(execute=True) as callbacks:
            article.title = "published"
            article.save()
            # Not committed yet: the gateway still holds all three entries.
            assert self.gw.stats().invalidations == before
            assert self.gw.entry_count(TENANT) == 3
        assert len(callbacks) == 1
        assert self.gw.entry_count(TENANT) == 1  # only the other article's entry is left
        assert not self.cached("summarise the article", deps)
        assert not self.cached("list the articles", [table_dep(Article)])
        assert self.cached("summarise the other", [row_dep(other)])

        [event] = self.events
        assert event["sender"] is Article
        assert event["action"] == "save"
        assert event["using"] == "default"
        assert event["dep_ids"] == tuple(deps)
        assert [r.ok for r in event["results"]] == [True, True]
        assert self.gw.dep_version(TENANT, deps[1]) == event["results"][1].new_hash

    def test_delete_invalidates_the_row_it_had_and_cascades(self) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            article = Article.objects.create(title="doomed")
            Comment.objects.create(article=article, text="first")
        pk = article.pk
        comments_dep = f"article-comments:{pk}"
        assert deps_for(Comment(article=article, text="x")) == [
            "table:cc_django_app.comment",
            comments_dep,
        ]
        assert self.ask("summarise the doomed article", [row_dep(Article, pk)]) == "MISS"
        assert self.ask("summarise its comments", [comments_dep]) == "MISS"
        self.events.clear()

        with self.captureOnCommitCallbacks(execute=True):
            article.delete()
        assert article.pk is None  # Django cleared it; the dep was computed before
        actions = {(e["sender"], e["action"]) for e in self.events}
        assert actions == {(Article, "delete"), (Comment, "delete")}
        assert self.gw.entry_count(TENANT) == 0
        assert self.gw.dep_version(TENANT, row_dep(Article, pk)) is not None

    def test_rollback_invalidates_nothing(self) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            article = Article.objects.create(title="stable")
        assert self.ask("summarise the stable article", deps_for(article)) == "MISS"
        self.events.clear()
        before = self.gw.stats().invalidations

        def work() -> None:
            article.title = "never committed"
            article.save()
            Article.objects.create(title="never either")

        with self.captureOnCommitCallbacks(execute=True) as callbacks:
            rolled_back(work)
        assert callbacks == []
        assert self.events == []
        assert self.gw.stats().invalidations == before
        assert self.cached("summarise the stable article", deps_for(article))

    def test_untracked_models_and_manual_invalidation(self) -> None:
        with self.captureOnCommitCallbacks(execute=True) as callbacks:
            Untracked.objects.create(name="ignored")
        assert callbacks == []
        with self.captureOnCommitCallbacks(execute=True):
            article = Article.objects.create(title="bulk")
        assert self.ask("summarise bulk", deps_for(article)) == "MISS"
        self.events.clear()
        # QuerySet.update sends no signal: invalidate_on_commit covers it.
        with self.captureOnCommitCallbacks(execute=True):
            Article.objects.filter(pk=article.pk).update(title="bulk2")
            assert self.events == []
            invalidate_on_commit([table_dep(Article), table_dep(Article)])
        [event] = self.events
        assert event["action"] == "manual"
        assert event["dep_ids"] == ("table:cc_django_app.article",)
        assert not self.cached("summarise bulk", deps_for(article))

    def test_abstract_bases_and_proxies_use_concrete_names(self) -> None:
        assert Stamped in tracked_models()
        assert Note not in tracked_models()  # inherits the abstract base's tracking
        with self.captureOnCommitCallbacks(execute=True):
            note = Note.objects.create(name="n")
            proxied = ArticleProxy.objects.create(title="via proxy")
        assert deps_for(note) == ["table:cc_django_app.note", f"row:cc_django_app.note:{note.pk}"]
        assert deps_for(proxied) == [
            "table:cc_django_app.article",
            f"row:cc_django_app.article:{proxied.pk}",
        ]
        assert {e["sender"] for e in self.events} == {Note, ArticleProxy}
        with pytest.raises(TypeError, match="abstract"):
            table_dep(Stamped)
        with pytest.raises(TypeError, match="pk"):
            row_dep(Article)
        with pytest.raises(ValueError, match="no primary key"):
            row_dep(Article(title="unsaved"))

    def test_track_refuses_what_it_cannot_track(self) -> None:
        with pytest.raises(TypeError, match="Django model class"):
            track(dict)
        with pytest.raises(ValueError, match="no deps"):
            track(table=False, rows=False)(Untracked)
        assert Untracked not in tracked_models()


class TestFailures(GatewayMixin, TestCase):
    def test_gateway_failure_is_logged_and_signalled_never_raised(self) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            article = Article.objects.create(title="x")
        self.events.clear()
        self.gw.add_fault(Fault(status=500), path=INVALIDATE_PATH, times=10)
        # cachecore._cli.run_invalidate disables this logger for the whole process
        # (a CLI test run earlier in the session leaves it off): undo that here.
        sdk_logger = logging.getLogger("cachecore")
        self.addCleanup(setattr, sdk_logger, "disabled", sdk_logger.disabled)
        sdk_logger.disabled = False
        with (
            self.assertLogs("cachecore", level=logging.WARNING) as logs,
            self.captureOnCommitCallbacks(execute=True),
        ):
            article.save()  # must not raise: the data is committed either way
        [event] = self.events
        results: list[InvalidateResult] = event["results"]
        assert [r.ok for r in results] == [False, False]
        assert all(r.status_code == 500 and r.exception is not None for r in results)
        assert any("row:cc_django_app.article" in line for line in logs.output)

    def test_a_broken_configuration_is_reported_not_raised(self) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            article = Article.objects.create(title="x")
        self.events.clear()
        with (
            override_settings(CACHECORE={"GATEWAY_URL": "ftp://nowhere", "TOKEN": "t"}),
            self.assertLogs("cachecore.contrib.django", level=logging.WARNING),
            self.captureOnCommitCallbacks(execute=True),
        ):
            article.save()
        [event] = self.events
        assert [r.ok for r in event["results"]] == [False, False]
        assert "http://" in (event["results"][0].error or "")

    def test_a_failing_signal_receiver_does_not_break_the_others(self) -> None:
        def broken(**kwargs: Any) -> None:
            raise RuntimeError("receiver bug")

        invalidated.connect(broken, weak=False, dispatch_uid="broken")
        self.addCleanup(invalidated.disconnect, dispatch_uid="broken")
        with (
            self.assertLogs("cachecore.contrib.django", level=logging.ERROR),
            self.captureOnCommitCallbacks(execute=True),
        ):
            Article.objects.create(title="x")
        assert len(self.events) == 1


class TestAutoInvalidateOff(GatewayMixin, TestCase):
    extra_settings = {"AUTO_INVALIDATE": False}  # noqa: RUF012

    def test_no_callbacks_when_turned_off(self) -> None:
        with self.captureOnCommitCallbacks(execute=True) as callbacks:
            Article.objects.create(title="quiet")
        assert callbacks == []
        assert self.gw.stats().invalidations == 0


class TestRealTransactions(GatewayMixin, TransactionTestCase):
    """Real commits and rollbacks, no captured callbacks: what production does."""

    def test_commit_invalidates_and_rollback_does_not(self) -> None:
        article = Article.objects.create(title="autocommit")  # autocommit: runs at once
        assert [e["action"] for e in self.events] == ["save"]
        assert self.ask("summarise autocommit", deps_for(article)) == "MISS"

        article.title = "rolled back"
        rolled_back(article.save)
        assert len(self.events) == 1
        assert self.cached("summarise autocommit", deps_for(article))

        with transaction.atomic():
            article.title = "committed"
            article.save()
            rolled_back(lambda: Article.objects.create(title="inner"))  # a savepoint
            assert len(self.events) == 1  # still inside the outer transaction
        assert len(self.events) == 2
        assert self.events[1]["dep_ids"] == tuple(deps_for(article))
        assert not self.cached("summarise autocommit", deps_for(article))


class TestSettings(TestCase):
    def test_client_follows_the_setting(self) -> None:
        first = get_client()
        assert get_client() is first
        with override_settings(CACHECORE={"GATEWAY_URL": "http://other.test/v1", "TOKEN": "t"}):
            other = get_client()
            assert other is not first
            assert other.gateway_url == "http://other.test"
        assert get_client().gateway_url == GATEWAY_URL
        assert check_settings() == []

    def test_bad_settings_are_named(self) -> None:
        with (
            override_settings(CACHECORE={"GATEWAY_URL": GATEWAY_URL, "TOKN": "t"}),
            pytest.raises(ImproperlyConfigured, match=r"TOKN.*known keys"),
        ):
            get_client()
        with (
            override_settings(CACHECORE="http://x"),
            pytest.raises(ImproperlyConfigured, match="must be a dict"),
        ):
            get_client()

    def test_system_check_reports_missing_configuration(self) -> None:
        env = pytest.MonkeyPatch()
        self.addCleanup(env.undo)
        env.delenv("CACHECORE_GATEWAY_URL", raising=False)
        env.delenv("CACHECORE_TOKEN", raising=False)
        with override_settings(CACHECORE={"GATEWAY_URL": GATEWAY_URL}):
            errors = check_settings()
            assert [e.id for e in errors] == ["cachecore.E001"]
            assert "CACHECORE_TOKEN" in errors[0].msg
            assert "cachecore.E001" in {e.id for e in checks.run_checks()}
