"""Models covering each way of declaring deps: plain, table-only with extra, abstract, proxy."""

from __future__ import annotations

from django.db import models

from cachecore.contrib.django import track


@track
class Article(models.Model):
    title = models.CharField(max_length=100)

    class Meta:
        app_label = "cc_django_app"


@track(rows=False, extra=lambda comment: [f"article-comments:{comment.article_id}"])
class Comment(models.Model):
    article = models.ForeignKey(Article, on_delete=models.CASCADE)
    text = models.CharField(max_length=100)

    class Meta:
        app_label = "cc_django_app"


class Untracked(models.Model):
    name = models.CharField(max_length=100)

    class Meta:
        app_label = "cc_django_app"


@track
class Stamped(models.Model):
    """An abstract tracked base: its concrete subclasses feed deps under their own names."""

    name = models.CharField(max_length=100)

    class Meta:
        abstract = True
        app_label = "cc_django_app"


class Note(Stamped):
    class Meta:
        app_label = "cc_django_app"


class ArticleProxy(Article):
    class Meta:
        proxy = True
        app_label = "cc_django_app"
