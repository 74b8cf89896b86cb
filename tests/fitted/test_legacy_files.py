"""Files written by earlier vaekit versions still decode to exactly what they did."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from vaekit.codec.container import ContainerReader
from vaekit.estimators.persistence import load
from vaekit.fitted.streams import iter_decompressed

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"


@pytest.mark.parametrize(("name", "version"), [("v3_sd0.3", 3), ("v4_lossless", 4),
                                               ("v5_sd0.01", 5), ("v6_int", 6)])
def test_a_file_of_an_older_codec_version_decodes_as_it_did(name: str, version: int) -> None:
    data = (LEGACY / f"legacy_{name}.vkc").read_bytes()
    with ContainerReader(io.BytesIO(data)) as reader:
        assert reader.header["codec_version"] == version
    est = load(LEGACY / "legacy_model.vaekit")
    text = est.decompress(data).to_csv(index=False)
    assert text == (LEGACY / f"legacy_{name}.csv").read_text()


# named, not globbed: a missing file fails instead of leaving nothing to test
FORCED = [LEGACY / "forced" / f"f{i}.vkc" for i in range(10)]


@pytest.mark.parametrize("path", FORCED, ids=[p.stem for p in FORCED])
def test_every_old_coder_and_layout_decodes_as_it_did(path: Path) -> None:
    """Files of codec 4 and 5 whose columns were forced onto each old coder (zstd,
    Gaussian with escapes, rank, pcodec, counts, rank counts; WHOLE grids), several
    chunks each, blanks and unseen levels: the same CSV text as the vaekit that wrote
    them decoded."""
    est = load(LEGACY / "forced" / "model.vaekit")
    frame = pd.concat(list(iter_decompressed(str(path), est)))
    assert frame.to_csv(index=False) == path.with_suffix(".csv").read_text()
