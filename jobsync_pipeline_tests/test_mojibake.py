import pytest

from jobsync_pipeline.core.mojibake import might_be_mojibake, repair_mojibake


@pytest.mark.parametrize("broken, repaired", [
    ("KrakÃ³w", "Kraków"),
    ("ZÃ³calo Health", "Zócalo Health"),
    ("GdaÅ\x84sk", "Gdańsk"),
    ("Engineer \u00e2\u0080\u0093 Data", "Engineer – Data"),  # RemoteOK's "\u00e2\u0080\u0093" escapes
    ("Bachelorâ€™s degree", "Bachelor’s degree"),  # broken through Windows-1252
    ("Ã¢â‚¬â€œ", "–"),  # broken twice
    ("Â·Â Â Bachelorâ\x80\x99s", "·Â Â Bachelor’s"),  # runs repaired one by one; "Â " (a plain space) is not one
])
def test_mojibake_is_repaired(broken, repaired):
    assert repair_mojibake(broken) == repaired


@pytest.mark.parametrize("text", ["naïve café", "São Paulo", "NÃO", "Ã", "It’s", "café»", "Zürich", "日本語", ""])
def test_text_that_is_fine_is_left_alone(text):
    assert repair_mojibake(text) is None


def test_the_cheap_search_lets_ordinary_text_through():
    assert not might_be_mojibake("Senior Engineer – Kraków, Zürich, São Paulo")
    assert might_be_mojibake("KrakÃ³w")
