import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobsync_pipeline.core.workplace import UNKNOWN, WORLDWIDE, Workplace, infer_workplace, named_places


@pytest.mark.parametrize(("location", "expected"), [
    ("Remote - US", Workplace("remote", ("US",), "location")),
    ("Remote (US)", Workplace("remote", ("US",), "location")),
    ("Remote (EU)", Workplace("remote", ("EU",), "location")),
    ("Remote, United States", Workplace("remote", ("US",), "location")),
    ("Remote - US or Canada", Workplace("remote", ("US", "Canada"), "location")),
    ("Remote (US only)", Workplace("remote", ("US",), "location")),
    ("Anywhere", Workplace("remote", (WORLDWIDE,), "location")),
    ("Remote, Worldwide", Workplace("remote", (WORLDWIDE,), "location")),
    ("Remote", Workplace("remote", (), "location")),
    ("Hybrid - London", Workplace("hybrid", (), "location")),
    ("San Francisco, CA (On-site)", Workplace("onsite", (), "location")),
    ("Berlin", UNKNOWN),
    ("", UNKNOWN),
])
def test_location_text(location, expected):
    assert infer_workplace(location=location) == expected


def test_remote_us_spellings_agree():
    assert infer_workplace(location="Remote - US") == infer_workplace(location="Remote (US)")


@pytest.mark.parametrize(("field", "kind"), [("remote", "remote"), ("hybrid", "hybrid"), ("onsite", "onsite"),
                                             ("on-site", "onsite"), ("On Site", "onsite"), ("In-Office", "onsite"),
                                             ("Remote", "remote")])
def test_structured_field_decides_first(field, kind):
    found = infer_workplace(workplace_type=field, location="Remote - US" if kind != "remote" else "Berlin",
                            title="Engineer (Remote)")
    assert (found.kind, found.evidence) == (kind, "field")


def test_lever_remote_field_keeps_regions_from_location():
    assert infer_workplace(workplace_type="remote", location="Remote - US") == Workplace("remote", ("US",), "field")


def test_a_remote_field_takes_its_regions_from_a_location_that_names_them():
    assert infer_workplace(workplace_type="remote", location="Berlin, Germany") == Workplace("remote", ("Germany",),
                                                                                             "field")
    assert infer_workplace(workplace_type="remote", location="United States").regions == ("US",)
    # "CA" after a city is California, not Canada
    assert infer_workplace(workplace_type="remote", location="San Francisco, CA").regions == ()


def test_unrecognized_field_falls_back_to_location():
    assert infer_workplace(workplace_type="unspecified", location="Remote (EU)") == Workplace("remote", ("EU",),
                                                                                               "location")


def test_himalayas_restrictions():
    assert infer_workplace(restrictions=[], location="Worldwide") == Workplace("remote", (WORLDWIDE,), "field")
    assert infer_workplace(restrictions=["United States", "Canada", "canada"]) == Workplace(
        "remote", ("US", "Canada"), "field")
    assert infer_workplace(restrictions=["Germany"]).regions == ("Germany",)


def test_one_region_however_it_is_written():
    spellings = ["United States", "US", "USA", "U.S.", "U.S.A.", "United States of America", "usa"]
    assert {infer_workplace(restrictions=[name]).regions for name in spellings} == {("US",)}
    assert {infer_workplace(location=f"Remote - {name}").regions for name in spellings} == {("US",)}
    assert infer_workplace(restrictions=["Deutschland"]).regions == infer_workplace(location="Remote (Germany)").regions
    assert infer_workplace(restrictions=["México"]).regions == infer_workplace(location="Remote, Mexico").regions == (
        "Mexico",)
    assert infer_workplace(restrictions=["Atlantis"]).regions == ("Atlantis",)  # unknown names kept as given


@pytest.mark.parametrize(("location", "regions", "places"), [
    ("Remote - US or Canada", ("US", "Canada"), ()),
    ("Berlin, Germany", ("Germany",), ("berlin",)),
    ("USA, New York", ("US",), ("new york",)),
    ("San Francisco, CA (Hybrid)", (), ("san francisco", "ca")),
    ("Remote - CA", ("Canada",), ()),
    ("On-site - Cambridge, MA", (), ("cambridge", "ma")),
    ("Zürich, Switzerland", ("Switzerland",), ("zurich",)),
    ("NYC", (), ("new york",)),
    ("München", (), ("munich",)),
    ("New Mexico", (), ("new mexico",)),
    ("Global", (WORLDWIDE,), ()),
    ("USA Only", ("US",), ()),
    ("", (), ()),
    (None, (), ()),
])
def test_named_places(location, regions, places):
    assert named_places(location) == (regions, places)


def test_title_is_the_weakest_evidence():
    assert infer_workplace(location="Berlin", title="Backend Engineer (Remote)") == Workplace("remote", (), "title")
    assert infer_workplace(location="Remote - EU", title="Engineer (Hybrid)").evidence == "location"
    assert infer_workplace(title="Senior Engineer") == UNKNOWN


@given(st.one_of(st.none(), st.text()), st.one_of(st.none(), st.lists(st.text())), st.one_of(st.none(), st.text()),
       st.one_of(st.none(), st.text()))
def test_never_raises(field, restrictions, location, title):
    found = infer_workplace(workplace_type=field, restrictions=restrictions, location=location, title=title)
    assert found.kind in (None, "remote", "hybrid", "onsite")
    assert found.evidence in (None, "field", "location", "title")
    assert found.kind is not None or found.evidence is None


def test_a_remote_field_with_a_worldwide_location_is_open_worldwide():
    assert infer_workplace(workplace_type="remote", location="Global Remote") == Workplace("remote", ("Worldwide",), "field")
    assert infer_workplace(workplace_type="remote", location="Remote") == Workplace("remote", (), "field")
