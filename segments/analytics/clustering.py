"""K-means clusters of contacts over standardised behaviour, described in plain words.

Features, per contact with at least one event in the period (one SQL aggregate query):
recency (days since the last event), frequency (purchases), monetary (spend), tenure (days
since the first event ever) and the event mix (shares of product_viewed, page_viewed and
order_completed among the period's events). The skewed counts are log-transformed, then
every feature is standardised; k is given or chosen by the best mean silhouette.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.db import transaction
from django.db.models import Count, DecimalField, Max, Min, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from crm.models import Event
from segments.models.analytics import ClusterDescription, ClusteringRun, ContactCluster
from segments.models.definitions import Segment

FEATURES = [
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "share_product_viewed",
    "share_page_viewed",
    "share_order_completed",
]
_LOGGED = {"recency_days", "frequency", "monetary", "tenure_days"}
SILHOUETTE_SAMPLE = 10_000  # exact silhouette is O(n²) in time and memory
KEEP_RUNS = 3  # contact assignments are kept for this many latest runs
BATCH_SIZE = 5_000
DEFAULT_SEED = 42
ProgressCallback = Callable[[str], None]


class ClusteringError(ValueError):
    """Too few contacts for the k asked, or a bad k range."""


@dataclass
class ContactFeatures:
    contact_ids: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]  # rows: contacts, columns: FEATURES


def contact_features(*, period_days: int, now: dt.datetime) -> ContactFeatures:
    start = now - dt.timedelta(days=period_days)
    in_period = Q(occurred_at__gt=start, occurred_at__lte=now)
    rows = (
        Event.objects.filter(contact__is_erased=False, occurred_at__lte=now)
        .values("contact_id")
        .annotate(
            first=Min("occurred_at"),
            last=Max("occurred_at"),
            events=Count("id", filter=in_period),
            orders=Count("id", filter=in_period & Q(type=Event.ORDER_COMPLETED)),
            spend=Coalesce(
                Sum("value", filter=in_period & Q(type=Event.ORDER_COMPLETED)),
                Value(0),
                output_field=DecimalField(decimal_places=2),
            ),
            products=Count("id", filter=in_period & Q(type=Event.PRODUCT_VIEWED)),
            pages=Count("id", filter=in_period & Q(type=Event.PAGE_VIEWED)),
        )
        .filter(events__gt=0)
        .order_by("contact_id")
        .values_list(
            "contact_id", "first", "last", "events", "orders", "spend", "products", "pages"
        )
        .iterator(chunk_size=BATCH_SIZE)
    )
    ids: list[int] = []
    table: list[tuple[float, ...]] = []
    for contact_id, first, last, events, orders, spend, products, pages in rows:
        ids.append(contact_id)
        table.append(
            (
                (now - last).total_seconds() / 86_400,
                float(orders),
                float(spend),
                (now - first).total_seconds() / 86_400,
                products / events,
                pages / events,
                orders / events,
            )
        )
    values = np.array(table, dtype=np.float64).reshape(len(ids), len(FEATURES))
    return ContactFeatures(np.array(ids, dtype=np.int64), values)


# scikit-learn takes seconds to import; it is imported where used so that every
# `manage.py segments ...` command and every worker start does not pay for it.


def _standardise(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    from sklearn.preprocessing import StandardScaler

    transformed = values.copy()
    for column, name in enumerate(FEATURES):
        if name in _LOGGED:
            transformed[:, column] = np.log1p(np.maximum(transformed[:, column], 0.0))
    scaled: npt.NDArray[np.float64] = StandardScaler().fit_transform(transformed)
    return scaled


def _band(ratio: float) -> str:
    """Where a cluster's mean sits against everyone's: "above", "far below", "below", or ""
    when too close to the average to be worth saying."""
    if ratio >= 1.25:
        return "above"
    if ratio <= 0.2:
        return "far below"
    if ratio <= 0.8:
        return "below"
    return ""


def describe_cluster(
    members: npt.NDArray[np.float64], everyone: npt.NDArray[np.float64]
) -> tuple[str, str]:
    """(label, description): how this cluster differs from the average contact."""
    col = {name: i for i, name in enumerate(FEATURES)}
    mean_all = everyone.mean(axis=0)
    mean = members.mean(axis=0)
    phrases: list[str] = []
    label_parts: list[str] = []

    buys, buys_all = mean[col["frequency"]], mean_all[col["frequency"]]
    if buys == 0:
        phrases.append("have not bought in the period")
        label_parts.append("Browsers")
    elif buys_all > 0:
        ratio = buys / buys_all
        numbers = f"{buys:.1f} purchases each vs {buys_all:.1f}"
        said = {
            "above": (f"buy {ratio:.1f} times as often as average ({numbers})", "Frequent buyers"),
            "far below": (
                f"rarely buy ({buys:.2f} purchases each vs {buys_all:.1f} on average)",
                "Rare buyers",
            ),
            "below": (
                f"buy {1 / ratio:.1f} times less often than average ({numbers})",
                "Occasional buyers",
            ),
        }.get(_band(ratio))
        if said:
            phrases.append(said[0])
            label_parts.append(said[1])
    spend, spend_all = mean[col["monetary"]], mean_all[col["monetary"]]
    if spend_all > 0 and spend > 0:
        ratio = spend / spend_all
        numbers = f"{spend:,.2f} each vs {spend_all:,.2f}"
        said = {
            "above": (f"spend {ratio:.1f} times as much ({numbers})", "big spenders"),
            "far below": (f"spend little ({numbers} on average)", "small spenders"),
            "below": (f"spend {1 / ratio:.1f} times less ({numbers})", "small baskets"),
        }.get(_band(ratio))
        if said:
            phrases.append(said[0])
            label_parts.append(said[1])

    typical = float(np.median(members[:, col["recency_days"]]))
    if typical <= float(np.median(everyone[:, col["recency_days"]])):
        # "mostly": more than half of them were active within that many days.
        phrases.append(f"mostly active in the last {max(1, math.ceil(typical))} days")
        label_parts.append("recently active")
    else:
        phrases.append(f"typically last seen {math.floor(typical)} days ago")
        dormant = int(settings.LIFECYCLE_DORMANT_DAYS)
        label_parts.append("drifting away" if typical < dormant else "inactive")

    tenure_ratio = np.median(members[:, col["tenure_days"]]) / max(
        np.median(everyone[:, col["tenure_days"]]), 1e-9
    )
    if tenure_ratio <= 0.5:
        phrases.append("newer than most contacts")
    elif tenure_ratio >= 1.5:
        phrases.append("known for longer than most")

    mix = {
        "product_viewed": ("view products", col["share_product_viewed"]),
        "page_viewed": ("read pages", col["share_page_viewed"]),
        "order_completed": ("order", col["share_order_completed"]),
    }
    best, best_lift = None, 1.25
    for verb, column in mix.values():
        if mean_all[column] > 0 and mean[column] / mean_all[column] >= best_lift:
            best, best_lift = verb, mean[column] / mean_all[column]
    if best:
        phrases.append(f"{best} more than others ({best_lift:.1f} times the average share)")

    label = ", ".join(label_parts) or "Average contacts"
    return label[:1].upper() + label[1:], ", ".join(phrases)


@dataclass
class ClusteringResult:
    run: ClusteringRun
    scores: dict[int, float]  # k -> mean silhouette


def _silhouette(scaled: npt.NDArray[np.float64], labels: npt.NDArray[np.int64], seed: int) -> float:
    from sklearn.metrics import silhouette_score

    if len(set(labels.tolist())) < 2:
        return -1.0
    from sklearn import config_context

    sample = SILHOUETTE_SAMPLE if scaled.shape[0] > SILHOUETTE_SAMPLE else None
    # Distances are computed in chunks of this many MB rather than scikit-learn's 1 GB.
    with config_context(working_memory=128):
        return float(silhouette_score(scaled, labels, sample_size=sample, random_state=seed))


def _kmeans(scaled: npt.NDArray[np.float64], k: int, seed: int) -> npt.NDArray[np.int64]:
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=k, n_init=4, random_state=seed)
    labels: npt.NDArray[np.int64] = model.fit_predict(scaled).astype(np.int64)
    # Number clusters by size (largest first), so that the same data gives the same indices.
    sizes = np.bincount(labels, minlength=k)
    order = np.argsort(-sizes, kind="stable")
    renumber = np.empty(k, dtype=np.int64)
    renumber[order] = np.arange(k)
    result: npt.NDArray[np.int64] = renumber[labels]
    return result


def clustering_run(
    *,
    k: int | None = None,
    k_range: tuple[int, int] = (2, 8),
    seed: int = DEFAULT_SEED,
    period_days: int | None = None,
    now: dt.datetime | None = None,
    progress: ProgressCallback | None = None,
) -> ClusteringResult:
    """Clusters contacts, stores the run and every assignment, and returns the run."""
    now = now or timezone.now()
    period = int(period_days if period_days is not None else settings.RFM_PERIOD_DAYS)
    low, high = (k, k) if k is not None else k_range
    if low < 2 or high < low:
        raise ClusteringError(f"k must be at least 2 and the range ordered, got {low}-{high}")
    features = contact_features(period_days=period, now=now)
    n = features.contact_ids.size
    if n <= low:
        raise ClusteringError(
            f"{n} contacts with events in the last {period} days; need more than {low} for k={low}"
        )
    high = min(high, n - 1)
    scaled = _standardise(features.values)
    scores: dict[int, float] = {}
    best_k, best_labels, best_score = low, None, -2.0
    for candidate in range(low, high + 1):
        labels = _kmeans(scaled, candidate, seed)
        score = _silhouette(scaled, labels, seed)
        scores[candidate] = score
        if progress:
            progress(f"k={candidate}: silhouette {score:.3f}")
        if score > best_score:
            best_k, best_labels, best_score = candidate, labels, score
    assert best_labels is not None

    descriptions: list[ClusterDescription] = []
    for index in range(best_k):
        members = features.values[best_labels == index]
        label, text = describe_cluster(members, features.values)
        descriptions.append(
            {
                "cluster": index,
                "label": label,
                "description": text,
                "size": int(members.shape[0]),
                "share": round(members.shape[0] / n, 4),
                "means": {
                    name: round(float(v), 4)
                    for name, v in zip(FEATURES, members.mean(axis=0), strict=True)
                },
                "segment_slug": None,
            }
        )
    with transaction.atomic():
        run = ClusteringRun.objects.create(
            k=best_k,
            features=FEATURES,
            silhouette=best_score,
            seed=seed,
            period_days=period,
            contacts=n,
            descriptions=descriptions,
            created_at=now,
        )
    for start in range(0, n, BATCH_SIZE):
        stop = min(start + BATCH_SIZE, n)
        ContactCluster.objects.bulk_create(
            [
                ContactCluster(
                    run=run,
                    contact_id=int(features.contact_ids[i]),
                    cluster=int(best_labels[i]),
                    label=descriptions[int(best_labels[i])]["label"][:200],
                )
                for i in range(start, stop)
            ]
        )
        if progress:
            progress(f"saved {stop}/{n} assignments")
    old_runs = ClusteringRun.objects.order_by("-created_at", "-id").values_list("id", flat=True)[
        KEEP_RUNS:
    ]
    ContactCluster.objects.filter(run_id__in=list(old_runs)).delete()
    cluster_segments_save(run=run)
    return ClusteringResult(run=run, scores=scores)


def cluster_segment_slug(index: int) -> str:
    return f"kmeans-cluster-{index}"


def cluster_segments_save(*, run: ClusteringRun) -> list[Segment]:
    """One segment per cluster of the run, {"type": "cluster", "cluster": i} (the latest
    run), named and described from the cluster; segments of clusters this run does not have
    are deactivated rather than deleted, since campaigns may point at them."""
    from segments.compiler.tree import definition_dump, definition_parse

    descriptions: list[ClusterDescription] = list(run.descriptions)
    saved: list[Segment] = []
    for entry in descriptions:
        index = entry["cluster"]
        definition = definition_dump(
            definition_parse({"op": "and", "conditions": [{"type": "cluster", "cluster": index}]})
        )
        segment, _ = Segment.objects.update_or_create(
            slug=cluster_segment_slug(index),
            defaults={
                "name": f"Cluster {index}: {entry['label']}"[:200],
                "description": (
                    f"Found by K-means (k={run.k}, run #{run.pk}, "
                    f"{run.created_at:%Y-%m-%d}): {entry['description']}. "
                    "Membership follows the latest clustering run."
                ),
                "definition": definition,
                "is_active": True,
            },
        )
        entry["segment_slug"] = segment.slug
        saved.append(segment)
    Segment.objects.filter(slug__regex=r"^kmeans-cluster-[0-9]+$").exclude(
        slug__in=[s.slug for s in saved]
    ).update(is_active=False)
    run.descriptions = descriptions
    run.save(update_fields=["descriptions"])
    return saved
