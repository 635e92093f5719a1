import pytest

from jobsync_pipeline.core.regions import canonical_regions, region_named, regions_in


@pytest.mark.parametrize("text, region", [
    ("Italy", "Italy"), ("United States of America", "US"), ("USA", "US"), ("Korea, Republic of", "South Korea"),
    ("Russian Federation", "Russia"), ("Türkiye", "Turkey"), ("Viet Nam", "Vietnam"), ("Côte d'Ivoire", "Côte d'Ivoire"),
    ("Svalbard and Jan Mayen", "Svalbard and Jan Mayen"), ("LATAM", "Latin America"), ("EMEA", "EMEA"),
    ("Global", "Worldwide"), ("Narnia", None),
])
def test_a_region_by_any_of_its_names(text, region):
    assert region_named(text) == region


def test_after_a_city_two_letters_and_georgia_are_states():
    assert region_named("CA", after_place=True) is None and region_named("CA") == "Canada"
    assert region_named("Georgia", after_place=True) is None and region_named("Georgia") == "Georgia"
    assert region_named("UK", after_place=True) == "UK"


@pytest.mark.parametrize("words, found", [
    ("north & south america", (["North America", "South America"], "")),
    ("us or canada", (["US", "Canada"], "")),
    ("central and eastern europe", (["Central Europe", "Eastern Europe"], "")),
    ("us canada", (["US", "Canada"], "")),
    ("berlin", None),
])
def test_regions_joined_in_one_part(words, found):
    assert regions_in(words) == found


def test_a_hyphen_joins_a_country_and_its_city():
    assert regions_in("us chicago", hyphenated=True) == (["US"], "chicago")
    assert regions_in("panama city") is None  # without the hyphen it is a city's name


def test_a_feeds_restrictions_in_the_stores_names():
    assert canonical_regions(["United States", "USA", "Korea, Republic of", "Atlantis", ""]) == [
        "US", "South Korea", "Atlantis"]
