"""Generate the seeded ``demo.csv`` / ``demo_labels.csv`` pair shipped with vaekit.

The table imitates a B2B web shop's order lines: each row is one order, with where it
came from (``region``, ``channel``), what was bought (``product_line``, ``quantity``,
``unit_price``), what was charged (``discount_rate``, ``amount``), how it shipped
(``delivery_days``) and who bought it (``tenure_days``, ``orders_90d``).  The columns
are generated from an explicit causal recipe, so they carry real structure that a
model of the joint distribution can learn:

* ``amount`` ~= ``quantity * unit_price * (1 - discount_rate) * (1 + regional tax)``
  plus a flat shipping fee on small shipped orders and ~2 % noise;
* ``discount_rate`` follows bulk-discount tiers of ``quantity`` plus a loyalty bonus
  that grows with ``tenure_days`` and occasional promotions;
* ``orders_90d`` grows with ``tenure_days`` and depends on ``channel``;
* ``unit_price`` and ``quantity`` depend on ``product_line``, ``region`` and weekday;
* ``delivery_days`` depends on ``region`` and ``channel`` (store sales are carried out);
* ``channel`` depends on ``region`` and ``is_weekend``; two region/channel pairs
  (``west``/``store`` and ``east``/``phone``) never occur in normal rows.

A small fraction of rows is then corrupted in five labelled ways (see
:func:`make_demo_table`), about 1 % of three columns is blanked completely at random,
and the rows are shuffled before ids are assigned, so neither position nor id leaks
the label.  The two data-quality kinds (``unusual_blanks``, ``unseen_category``) draw
from their own random stream, so the rows of the three original kinds and the normal
rows are exactly those of the earlier three-kind generator.

Run as a script to (re)write the two CSV files::

    python datasets/make_demo.py [--rows N] [--seed S] [--out-dir DIR]

The output is byte-for-byte reproducible for a given ``(rows, anomaly_fraction, seed)``.
Only the standard library, numpy and pandas are used, so the script runs without
vaekit installed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["ANOMALY_KINDS", "FEATURE_COLUMNS", "LABEL_COLUMNS", "make_demo_table", "main"]

ANOMALY_KINDS = ("extreme_value", "broken_correlation", "rare_combination",
                 "unusual_blanks", "unseen_category")
FEATURE_COLUMNS = (
    "row_id",
    "region",
    "channel",
    "product_line",
    "is_weekend",
    "quantity",
    "unit_price",
    "discount_rate",
    "amount",
    "delivery_days",
    "tenure_days",
    "orders_90d",
)
LABEL_COLUMNS = ("row_id", "is_anomaly", "anomaly_kind")

# --- categorical structure -------------------------------------------------------------

REGIONS = ("north", "south", "east", "west", "central")
REGION_P = np.array([0.24, 0.20, 0.18, 0.16, 0.22])

CHANNELS = ("web", "mobile", "phone", "store")
# P(channel | region) on weekdays.  The two zeros are deliberate: the west has no
# stores and the east has no call centre, which is what makes those pairs "rare
# combinations" when they show up.  Other pairs range from common to uncommon (10 %).
CHANNEL_GIVEN_REGION = np.array(
    [
        [0.45, 0.30, 0.15, 0.10],  # north
        [0.30, 0.25, 0.05, 0.40],  # south
        [0.40, 0.45, 0.00, 0.15],  # east
        [0.55, 0.35, 0.10, 0.00],  # west
        [0.25, 0.20, 0.20, 0.35],  # central
    ]
)
# On weekends the call centre is mostly closed and people shop from home.
WEEKEND_CHANNEL_FACTOR = np.array([1.3, 1.5, 0.25, 1.0])
RARE_PAIRS = (("west", "store"), ("east", "phone"))

PRODUCT_LINES = ("consumables", "hardware", "software", "services")
# P(product_line | channel): stores sell boxes off the shelf, the phone line sells
# services.
PRODUCT_GIVEN_CHANNEL = np.array(
    [
        [0.35, 0.30, 0.25, 0.10],  # web
        [0.45, 0.25, 0.25, 0.05],  # mobile
        [0.20, 0.25, 0.20, 0.35],  # phone
        [0.55, 0.35, 0.08, 0.02],  # store
    ]
)

# --- numeric structure -----------------------------------------------------------------

# Median unit price and log-scale spread per product line: the mixture of four
# log-normals gives a heavy right tail spanning about three orders of magnitude.
PRICE_MEDIAN = np.array([18.0, 320.0, 140.0, 850.0])
PRICE_LOG_SD = np.array([0.45, 0.70, 0.50, 0.60])
REGION_PRICE_INDEX = np.array([1.05, 0.92, 0.97, 1.18, 1.00])
CHANNEL_PRICE_INDEX = np.array([0.97, 0.97, 1.04, 1.06])
# Sales tax per region, folded into ``amount``.
REGION_TAX = np.array([0.08, 0.06, 0.07, 0.09, 0.05])
# Mean of ``quantity - 1`` per product line (negative binomial, overdispersed).
QUANTITY_MEAN = np.array([14.0, 2.5, 5.0, 0.6])
QUANTITY_DISPERSION = 1.2
# Bulk-discount tiers: (minimum quantity, discount).
DISCOUNT_TIERS = ((5, 0.03), (20, 0.07), (50, 0.12))
SHIPPING_FEE = 9.90
FREE_SHIPPING_FROM = 200.0
# Typical shipping time (days) per region, before the Poisson jitter.
REGION_DELIVERY_BASE = np.array([2, 3, 2, 5, 1])
CHANNEL_ORDER_RATE = np.array([1.0, 1.3, 0.6, 0.8])
MAX_TENURE_DAYS = 4000  # the shop opened about eleven years ago

# Columns blanked completely at random, and the share of cells blanked in each.
MISSING_COLUMNS = ("product_line", "tenure_days", "orders_90d")
MISSING_RATE = 0.01

# Extreme-value corruptions imitate data-entry slips: extra zeros typed into a price,
# a total or a quantity (cents keyed as units, a lost decimal point, cases keyed as
# items).  The value is multiplied by 10**k with the smallest k >= 2 that puts it
# beyond EXTREME_MARGIN times the column's largest clean value, so it is out of range
# for the column as a whole, not only for its own product line.
EXTREME_COLUMNS = ("unit_price", "amount", "quantity")
EXTREME_MARGIN = 2.0
# Extreme delivery times are back-orders / placeholder dates rather than slips.
EXTREME_DELIVERY_DAYS = (90, 400)
# Unusual blanks: several cells left empty in columns that are never blank otherwise
# (an order saved half-filled); unseen categories: one label mistyped (two adjacent
# letters swapped), so the value occurs nowhere else.
BLANK_COLUMNS = ("quantity", "unit_price", "discount_rate", "amount", "delivery_days")
BLANKS_PER_ROW = 3
MISTYPED_COLUMNS = ("region", "channel", "product_line")
NUMERIC_COLUMNS = (
    "quantity",
    "unit_price",
    "discount_rate",
    "amount",
    "delivery_days",
    "tenure_days",
    "orders_90d",
)


def _negative_binomial(rng: np.random.Generator, mean: np.ndarray, r: float) -> np.ndarray:
    """Draw overdispersed counts with the given means (variance = mean + mean**2 / r)."""
    return rng.negative_binomial(r, r / (r + mean))


def _draw_categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Draw one category index per row from a row-wise probability matrix."""
    cdf = np.cumsum(probs, axis=1)
    cdf[:, -1] = 1.0  # guard against round-off leaving the last bin short
    u = rng.random(probs.shape[0])[:, None]
    return (u > cdf).sum(axis=1)


def _discount_tier(quantity: np.ndarray) -> np.ndarray:
    """Bulk discount implied by the quantity alone."""
    tier = np.zeros(quantity.shape, dtype=float)
    for min_qty, rate in DISCOUNT_TIERS:
        tier[quantity >= min_qty] = rate
    return tier


def _expected_discount(quantity: np.ndarray, tenure_days: np.ndarray) -> np.ndarray:
    """Discount a customer gets without any promotion: bulk tier + loyalty bonus."""
    return _discount_tier(quantity) + 0.015 * np.minimum(tenure_days / 365.0, 4.0)


def _amount(
    quantity: np.ndarray,
    unit_price: np.ndarray,
    discount: np.ndarray,
    region: np.ndarray,
    channel: np.ndarray,
    noise: np.ndarray,
) -> np.ndarray:
    """Order total: net line value, tax, shipping fee on small shipped orders, noise."""
    net = quantity * unit_price * (1.0 - discount) * (1.0 + REGION_TAX[region])
    shipped = channel != CHANNELS.index("store")
    fee = np.where(shipped & (net < FREE_SHIPPING_FROM), SHIPPING_FEE, 0.0)
    # The multiplicative noise stands for rounding, surcharges and manual adjustments.
    return np.round((net + fee) * noise, 2)


def _simulate_normal(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Simulate ``n`` ordinary orders; categoricals are kept as integer codes here."""
    is_weekend = (rng.random(n) < 0.24).astype(np.int64)  # fewer orders on weekends
    region = rng.choice(len(REGIONS), size=n, p=REGION_P)

    chan_p = CHANNEL_GIVEN_REGION[region] * np.where(
        is_weekend[:, None] == 1, WEEKEND_CHANNEL_FACTOR, 1.0
    )
    chan_p /= chan_p.sum(axis=1, keepdims=True)
    channel = _draw_categorical(rng, chan_p)
    product = _draw_categorical(rng, PRODUCT_GIVEN_CHANNEL[channel])

    # Unit price: log-normal around a product-line median, shifted by regional price
    # level and channel mark-up.  Rounded to cents like a real price list.
    log_price = (
        np.log(PRICE_MEDIAN[product])
        + np.log(REGION_PRICE_INDEX[region])
        + np.log(CHANNEL_PRICE_INDEX[channel])
        + rng.normal(0.0, PRICE_LOG_SD[product])
    )
    unit_price = np.round(np.exp(log_price), 2)

    # Quantity: at least one item; businesses order less on weekends.
    q_mean = QUANTITY_MEAN[product] * np.where(is_weekend == 1, 0.7, 1.0)
    quantity = 1 + _negative_binomial(rng, q_mean, QUANTITY_DISPERSION)

    # Tenure: a fifth of orders come from new customers, the rest from an established
    # base whose age is roughly log-normal, capped at the shop's age.
    is_new = rng.random(n) < 0.2
    tenure = np.where(
        is_new,
        rng.exponential(40.0, n),
        rng.lognormal(np.log(700.0), 0.7, n),
    )
    tenure_days = np.minimum(np.floor(tenure), MAX_TENURE_DAYS).astype(np.int64)

    # Discount: tier + loyalty + occasional promotion (more of them on weekends) +
    # a little jitter, bounded to [0, 0.4].
    promo_p = np.where(is_weekend == 1, 0.20, 0.10)
    promo = np.where(rng.random(n) < promo_p, rng.uniform(0.03, 0.08, n), 0.0)
    discount = _expected_discount(quantity, tenure_days) + promo + rng.normal(0.0, 0.004, n)
    discount_rate = np.round(np.clip(discount, 0.0, 0.4), 3)

    amount_noise = rng.lognormal(0.0, 0.02, n)
    amount = _amount(quantity, unit_price, discount_rate, region, channel, amount_noise)

    # Delivery: store sales are mostly carried out (0 days) with some home deliveries;
    # shipped orders take a regional base time plus jitter, longer via phone or when
    # ordered on a weekend.
    store = channel == CHANNELS.index("store")
    store_days = np.where(rng.random(n) < 0.85, 0, 1 + rng.poisson(0.8, n))
    shipped_days = (
        REGION_DELIVERY_BASE[region]
        + rng.poisson(1.0, n)
        + (channel == CHANNELS.index("phone"))
        + is_weekend
    )
    delivery_days = np.where(store, store_days, shipped_days).astype(np.int64)

    # Orders in the last 90 days (this one included): grows with tenure, saturating
    # after about a year; app users order most often, phone customers least.
    rate = (0.4 + 5.5 * (1.0 - np.exp(-tenure_days / 150.0))) * CHANNEL_ORDER_RATE[channel]
    orders_90d = 1 + rng.poisson(rate)

    return {
        "region": region,
        "channel": channel,
        "product_line": product,
        "is_weekend": is_weekend,
        "quantity": quantity.astype(np.int64),
        "unit_price": unit_price,
        "discount_rate": discount_rate,
        "amount": amount,
        "delivery_days": delivery_days,
        "tenure_days": tenure_days,
        "orders_90d": orders_90d.astype(np.int64),
        "_amount_noise": amount_noise,
    }


class _RowPicker:
    """Hands out distinct row indices for injection, each satisfying a condition."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self.rng = rng
        self.free = np.ones(n, dtype=bool)

    def take(self, eligible: np.ndarray, k: int, what: str) -> np.ndarray:
        pool = np.flatnonzero(eligible & self.free)
        if pool.size < k:
            raise ValueError(
                f"only {pool.size} rows are eligible for {what!r} but {k} are needed; "
                "use more rows or a smaller anomaly_fraction"
            )
        # Sorting keeps the result independent of how numpy orders the sample.
        picked = np.sort(self.rng.choice(pool, size=k, replace=False))
        self.free[picked] = False
        return picked


def _split(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` integers that differ by at most one."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def _inject_extreme(
    rng: np.random.Generator,
    cols: dict[str, np.ndarray],
    rows: np.ndarray,
    clean_max: dict[str, float],
) -> None:
    """Corrupt one cell per row so that it lies far beyond its column's range.

    Only the one cell changes (a typo does not fix up the rest of the row), cycling
    through ``unit_price``, ``amount``, ``quantity`` and ``delivery_days``.
    ``clean_max`` holds each column's largest value before any injection.
    """
    targets = (*EXTREME_COLUMNS, "delivery_days")
    for i, row in enumerate(rows):
        col = targets[i % len(targets)]
        if col == "delivery_days":
            cols[col][row] = rng.integers(*EXTREME_DELIVERY_DAYS, endpoint=True)
            continue
        value = float(cols[col][row])
        power = 2
        while value * 10.0**power <= EXTREME_MARGIN * clean_max[col]:
            power += 1
        # Integer columns stay integer; money keeps its cents.
        new = value * 10**power
        cols[col][row] = int(new) if col == "quantity" else round(new, 2)


def _inject_broken(
    rng: np.random.Generator,
    cols: dict[str, np.ndarray],
    picker: _RowPicker,
    observed: dict[str, np.ndarray],
    k: int,
) -> np.ndarray:
    """Break one cross-column relation per row while every value stays ordinary.

    Three mechanisms share the ``k`` rows about equally:

    * ``amount`` no longer matches quantity x price (off by a factor 4 or more), but is
      redrawn inside the 5 %-95 % range of normal amounts (a mis-keyed total);
    * ``discount_rate`` contradicts the bulk tier: small orders get a discount from
      the 95 %-99 % percentile band, or large orders get none (an unauthorised or a
      forgotten discount).  ``amount`` is recomputed so that only this one relation
      breaks;
    * brand-new customers (``tenure_days`` < 45) with a number of recent orders from
      the 97 %-99 % percentile band (an account-takeover / bot pattern).
    """
    n_amount, n_discount, n_orders = _split(k, 3)
    rows_all = []
    # Only rows whose every value is ordinary (inside the clean 0.5 %-99.5 % range of
    # its column) are used, so that the broken relation is the one thing that is off.
    typical = np.ones(cols["amount"].shape, dtype=bool)
    for name in NUMERIC_COLUMNS:
        c_lo, c_hi = np.quantile(cols[name], [0.005, 0.995])
        typical &= (cols[name] >= c_lo) & (cols[name] <= c_hi)

    # (1) amount vs quantity * unit_price.
    amount = cols["amount"]
    lo, hi = np.log(np.quantile(amount, [0.05, 0.95]))
    log_expected = np.log(amount / cols["_amount_noise"])
    gap = np.log(4.0)
    # Room left in [lo, hi] once the band expected +- gap is excluded.
    below = np.clip(np.minimum(hi, log_expected - gap) - lo, 0.0, None)
    above = np.clip(hi - np.maximum(lo, log_expected + gap), 0.0, None)
    rows = picker.take(typical & (below + above > 0.5), n_amount, "broken amount")
    for row in rows:
        u = rng.uniform(0.0, below[row] + above[row])
        new = lo + u if u < below[row] else max(lo, log_expected[row] + gap) + (u - below[row])
        amount[row] = round(float(np.exp(new)), 2)
    rows_all.append(rows)

    # (2) discount vs quantity tier.
    disc = cols["discount_rate"]
    qty = cols["quantity"]
    expected = _expected_discount(qty, cols["tenure_days"])
    d_lo, d_hi = np.quantile(disc, [0.95, 0.99])
    n_high, n_none = _split(n_discount, 2)
    eligible = typical & (qty < 5) & (expected < d_lo - 0.10)
    rows_high = picker.take(eligible, n_high, "broken discount")
    disc[rows_high] = np.round(rng.uniform(d_lo, d_hi, rows_high.size), 3)
    eligible = typical & (_discount_tier(qty) >= 0.07)
    rows_none = picker.take(eligible, n_none, "missing discount")
    disc[rows_none] = 0.0
    rows = np.concatenate([rows_high, rows_none])
    amount[rows] = _amount(
        qty[rows],
        cols["unit_price"][rows],
        disc[rows],
        cols["region"][rows],
        cols["channel"][rows],
        cols["_amount_noise"][rows],
    )
    rows_all.append(rows)

    # (3) orders_90d vs tenure_days; both cells must stay visible for this to show.
    orders = cols["orders_90d"]
    o_lo, o_hi = np.quantile(orders, [0.97, 0.99])
    eligible = (
        typical & (cols["tenure_days"] < 45) & observed["tenure_days"] & observed["orders_90d"]
    )
    rows = picker.take(eligible, n_orders, "broken orders_90d")
    orders[rows] = rng.integers(int(np.ceil(o_lo)), int(o_hi), size=rows.size, endpoint=True)
    rows_all.append(rows)

    return np.concatenate(rows_all)


def _inject_rare(cols: dict[str, np.ndarray], picker: _RowPicker, k: int) -> np.ndarray:
    """Relabel rows with a region/channel pair that normal rows never show.

    The source row shares neither the new region nor the new channel and was a
    shipped (non-store) order, so its delivery time and price level fit neither of
    the two new labels (e.g. a ``west``/``store`` order delivered in 2 days).
    """
    region, channel = cols["region"], cols["channel"]
    store = CHANNELS.index("store")
    rows_all = []
    for (r_name, c_name), n_pair in zip(RARE_PAIRS, _split(k, len(RARE_PAIRS)), strict=True):
        r, c = REGIONS.index(r_name), CHANNELS.index(c_name)
        eligible = (region != r) & (channel != c) & (channel != store)
        rows = picker.take(eligible, n_pair, f"rare pair {r_name}/{c_name}")
        region[rows] = r
        channel[rows] = c
        rows_all.append(rows)
    return np.concatenate(rows_all)


def _mistype(rng: np.random.Generator, names: dict[str, np.ndarray], rows: np.ndarray) -> None:
    """Swap two adjacent letters of one label per row (cycling through
    :data:`MISTYPED_COLUMNS`), so that each new value occurs exactly once in the table."""
    used = {v for col in names.values() for v in col}
    for i, row in enumerate(rows):
        col = MISTYPED_COLUMNS[i % len(MISTYPED_COLUMNS)]
        word = str(names[col][row])
        starts = [int(j) for j in rng.permutation(len(word) - 1)]
        swaps = [word[:j] + word[j + 1] + word[j] + word[j + 2:] for j in starts]
        new = next((w for w in swaps if w not in used), word.upper() + str(i))
        used.add(new)
        names[col][row] = new


def make_demo_table(
    n_rows: int = 3000, anomaly_fraction: float = 0.03, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build the demo order table and its anomaly labels.

    Parameters
    ----------
    n_rows : int, default 3000
        Number of rows (orders), at least 100.
    anomaly_fraction : float, default 0.03
        Share of rows turned into anomalies, in ``[0, 0.2]``.  The count
        ``round(n_rows * anomaly_fraction)`` is split as evenly as possible across
        ``"extreme_value"``, ``"broken_correlation"`` and ``"rare_combination"``; as
        many rows as the largest of those three shares are added (from normal rows)
        for each of ``"unusual_blanks"`` and ``"unseen_category"``.
    seed : int, default 0
        Seed of the numpy random generator; equal arguments give identical tables.

    Returns
    -------
    features : pandas.DataFrame
        Columns :data:`FEATURE_COLUMNS`.  ``row_id`` is a unique string
        (``"R000001"`` ...); ``region``, ``channel`` and ``product_line`` are strings;
        ``is_weekend`` is 0/1; ``quantity``, ``delivery_days`` are ``int64``;
        ``tenure_days`` and ``orders_90d`` are nullable ``Int64``; ``unit_price``,
        ``discount_rate`` and ``amount`` are ``float64``.  About 1 % of
        ``product_line``, ``tenure_days`` and ``orders_90d`` is missing completely at
        random.  Rows are in random order.
    labels : pandas.DataFrame
        Columns :data:`LABEL_COLUMNS`, aligned row by row with ``features``:
        ``is_anomaly`` (0/1) and ``anomaly_kind`` (``""`` for normal rows).

    Notes
    -----
    The anomaly kinds are

    ``extreme_value``
        One cell far outside its column's range: ``unit_price``, ``amount`` or
        ``quantity`` times a power of ten (at least 100) that takes it past twice the
        column's largest clean value, or ``delivery_days`` of 90-400.
    ``broken_correlation``
        Every value within its column's normal range, but one relation broken:
        ``amount`` vs ``quantity * unit_price``, ``discount_rate`` vs ``quantity``, or
        ``orders_90d`` vs ``tenure_days``.
    ``rare_combination``
        A ``region``/``channel`` pair absent from normal rows (``west``/``store``,
        ``east``/``phone``), with numerics taken from an order that matches neither.
    ``unusual_blanks``
        Three of ``quantity``, ``unit_price``, ``discount_rate``, ``amount`` and
        ``delivery_days`` left blank (columns that are never blank otherwise).
    ``unseen_category``
        One of ``region``, ``channel``, ``product_line`` mistyped (two adjacent
        letters swapped): a value that occurs nowhere else.
    """
    n_rows = int(n_rows)
    if n_rows < 100:
        raise ValueError(f"n_rows must be at least 100, got {n_rows}")
    if not 0.0 <= anomaly_fraction <= 0.2:
        raise ValueError(f"anomaly_fraction must be in [0, 0.2], got {anomaly_fraction}")
    rng = np.random.default_rng(seed)

    cols = _simulate_normal(rng, n_rows)
    # Decide the missing cells up front (independently of everything else, i.e. MCAR)
    # so that anomalies which rely on a cell can avoid rows where it will be blank.
    observed = {c: rng.random(n_rows) >= MISSING_RATE for c in MISSING_COLUMNS}

    clean_max = {name: float(cols[name].max()) for name in NUMERIC_COLUMNS}
    picker = _RowPicker(rng, n_rows)
    kind = np.full(n_rows, "", dtype=object)
    n_extreme, n_broken, n_rare = _split(round(n_rows * anomaly_fraction), 3)
    # Reference quantiles in the injectors are taken before the rows they modify are
    # touched, so "normal range" means the range of the clean simulation.
    rows = picker.take(np.ones(n_rows, dtype=bool), n_extreme, "extreme_value")
    kind[rows] = "extreme_value"
    extreme_rows = rows
    rows = _inject_broken(rng, cols, picker, observed, n_broken)
    kind[rows] = "broken_correlation"
    rows = _inject_rare(cols, picker, n_rare)
    kind[rows] = "rare_combination"
    # Extreme values last: their rows were reserved first, but corrupting them earlier
    # would drag the quantiles the other injectors use.
    _inject_extreme(rng, cols, extreme_rows, clean_max)
    # The data-quality kinds come from their own stream (the main one is untouched, so
    # every other row is what the three-kind generator made) and from normal rows.
    extra = np.random.default_rng([seed, 18])
    picker.rng = extra
    n_quality = _split(round(n_rows * anomaly_fraction), 3)[0]
    blanked = {c: np.zeros(n_rows, dtype=bool) for c in BLANK_COLUMNS}
    rows = picker.take(np.ones(n_rows, dtype=bool), n_quality, "unusual_blanks")
    kind[rows] = "unusual_blanks"
    for row in rows:
        for c in extra.choice(BLANK_COLUMNS, size=BLANKS_PER_ROW, replace=False):
            blanked[str(c)][row] = True
    rows = picker.take(np.ones(n_rows, dtype=bool), n_quality, "unseen_category")
    kind[rows] = "unseen_category"
    names = {
        "region": np.asarray(REGIONS, dtype=object)[cols["region"]],
        "channel": np.asarray(CHANNELS, dtype=object)[cols["channel"]],
        "product_line": np.asarray(PRODUCT_LINES, dtype=object)[cols["product_line"]],
    }
    _mistype(extra, names, rows)

    # String columns are built without an explicit dtype: pandas 3 infers its ``str``
    # dtype (missing = NaN), pandas 2 keeps object with None; the CSV is the same.
    product_names = names["product_line"]
    features = pd.DataFrame(
        {
            "region": pd.Series(names["region"]),
            "channel": pd.Series(names["channel"]),
            "product_line": pd.Series(np.where(observed["product_line"], product_names, None)),
            "is_weekend": cols["is_weekend"].astype(np.int64),
            # Nullable integers where cells are blank, so the CSV keeps writing integers.
            "quantity": pd.Series(cols["quantity"], dtype="Int64").mask(blanked["quantity"]),
            "unit_price": pd.Series(cols["unit_price"], dtype=np.float64).mask(
                blanked["unit_price"]),
            "discount_rate": pd.Series(cols["discount_rate"], dtype=np.float64).mask(
                blanked["discount_rate"]),
            "amount": pd.Series(cols["amount"], dtype=np.float64).mask(blanked["amount"]),
            "delivery_days": pd.Series(cols["delivery_days"], dtype="Int64").mask(
                blanked["delivery_days"]),
            # Nullable integers, so the blanked cells do not turn the column into floats.
            "tenure_days": pd.Series(cols["tenure_days"], dtype="Int64").mask(
                ~observed["tenure_days"]
            ),
            "orders_90d": pd.Series(cols["orders_90d"], dtype="Int64").mask(
                ~observed["orders_90d"]
            ),
        }
    )
    labels = pd.DataFrame(
        {
            "is_anomaly": (kind != "").astype(np.int64),
            "anomaly_kind": pd.Series(kind),
        }
    )

    # Shuffle, then number: ids follow file order and say nothing about the label.
    order = rng.permutation(n_rows)
    features = features.iloc[order].reset_index(drop=True)
    labels = labels.iloc[order].reset_index(drop=True)
    row_id = pd.Series([f"R{i:06d}" for i in range(1, n_rows + 1)])
    features.insert(0, "row_id", row_id)
    labels.insert(0, "row_id", row_id)
    return features, labels


def _write_csv_atomic(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` to ``path`` via a temp file in the same folder and ``os.replace``.

    A reader never sees a half-written file, and an interrupted run leaves the old
    file in place.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp creates the file as 0600; give it the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            os.chmod(tmp, 0o666 & ~umask)
            # Fixed line ending so the bytes do not depend on the platform.
            df.to_csv(fh, index=False, lineterminator="\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(
        description="Write the seeded vaekit demo table (demo.csv) and its labels "
        "(demo_labels.csv)."
    )
    parser.add_argument("--rows", type=int, default=3000, help="number of rows (default 3000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--anomaly-fraction",
        type=float,
        default=0.03,
        help="share of anomalous rows (default 0.03)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="output folder (default: the folder of this script)",
    )
    args = parser.parse_args(argv)

    try:
        features, labels = make_demo_table(args.rows, args.anomaly_fraction, args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_csv_atomic(features, out_dir / "demo.csv")
    _write_csv_atomic(labels, out_dir / "demo_labels.csv")
    counts = labels["anomaly_kind"][labels["is_anomaly"] == 1].value_counts().sort_index()
    summary = ", ".join(f"{k}={v}" for k, v in counts.items())
    print(
        f"wrote {out_dir / 'demo.csv'} and {out_dir / 'demo_labels.csv'}: "
        f"{len(features)} rows, {int(labels['is_anomaly'].sum())} anomalies ({summary})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
