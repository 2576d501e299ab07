"""Django test cases run by Django's own test runner (``manage.py test`` style).

A tracked model's deps are invalidated at the reference gateway only once the
transaction commits, a cached answer that declared them turns back into a miss,
and a rollback invalidates nothing.
"""

from __future__ import annotations

import httpx
from cc_django_app.models import Article
from django.conf import settings
from django.db import transaction
from django.test import TestCase, TransactionTestCase
from openai import OpenAI

from cachecore import Dep
from cachecore.contrib.django import get_client, row_dep, table_dep

GATEWAY = settings.GATEWAY
TENANT = settings.TENANT


def ask(dep: str) -> str:
    """One chat call declaring ``dep``; returns the gateway's cache status."""
    cc = get_client()
    sdk = OpenAI(
        base_url="http://cachecore.test/v1",
        api_key=settings.CACHECORE["TOKEN"],
        http_client=httpx.Client(transport=cc.transport),
    )
    with cc.request_context(deps=[Dep(dep)]) as ctx:
        sdk.chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"about {dep}"}]
        )
    assert ctx.last is not None
    return ctx.last.status


class InvalidateOnCommit(TestCase):
    def test_save_invalidates_the_table_and_row_after_commit(self) -> None:
        table = table_dep(Article)
        before = GATEWAY.dep_version(TENANT, table)
        with self.captureOnCommitCallbacks(execute=True) as callbacks:
            article = Article.objects.create(title="first")
            self.assertEqual(GATEWAY.dep_version(TENANT, table), before)  # not yet committed
        self.assertEqual(len(callbacks), 1)
        self.assertNotEqual(GATEWAY.dep_version(TENANT, table), before)
        self.assertIsNotNone(GATEWAY.dep_version(TENANT, row_dep(article)))

    def test_a_cached_answer_turns_back_into_a_miss(self) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            article = Article.objects.create(title="draft")
        dep = row_dep(article)
        self.assertEqual(ask(dep), "MISS")
        self.assertEqual(ask(dep), "HIT_L1")
        with self.captureOnCommitCallbacks(execute=True):
            article.title = "final"
            article.save()
        self.assertEqual(ask(dep), "MISS")

    def test_delete_invalidates_the_row(self) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            article = Article.objects.create(title="doomed")
        dep = row_dep(article)
        before = GATEWAY.dep_version(TENANT, dep)
        with self.captureOnCommitCallbacks(execute=True):
            article.delete()
        self.assertNotEqual(GATEWAY.dep_version(TENANT, dep), before)


class RollbackInvalidatesNothing(TransactionTestCase):
    def test_rolled_back_save_sends_nothing(self) -> None:
        before = len(GATEWAY.requests)
        try:
            with transaction.atomic():
                Article.objects.create(title="never")
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        seen = [r for r in list(GATEWAY.requests)[before:] if r.path == "/v1/invalidate"]
        self.assertEqual(seen, [])
