import json

from jobsync_pipeline.core.enrich import DERIVED_COLUMNS, derive
from jobsync_pipeline.core.models import Posting, PostingDetails, postings_frame


def _posting(external_id="1", title="Senior Backend Engineer", company="Acme, Inc.", location="Remote - US",
             description="Build things.", details=None):
    return Posting(source="lever", board="acme", external_id=external_id, title=title, company=company,
                   location=location, description=description, details=details)


def test_derives_every_column_for_a_posting_without_details():
    derived = derive(postings_frame([_posting(description="Line one\nLine <two> & three")]))
    assert list(derived.columns) == list(DERIVED_COLUMNS)
    row = derived.iloc[0]
    # a text description becomes escaped paragraphs, never markup
    assert row["description_html"] == "<p>Line one</p><p>Line &lt;two&gt; &amp; three</p>"
    assert (row["workplace"], row["workplace_evidence"], json.loads(row["workplace_regions"])) == (
        "remote", "location", ["US"])
    assert row["salary_annual_min"] is None and row["salary_period"] is None
    assert row["category"] == "engineering"
    assert row["company_key"] == "acme" and row["dedupe_key"].startswith("acme|")


def test_derives_from_stated_details():
    details = PostingDetails(salary_min=60.0, salary_max=80.0, salary_currency="USD", salary_interval="per-hour-wage",
                             workplace_type="hybrid", department="Data Platform", tags='["python"]',
                             description_raw='<p onclick="x()">Hi<script>alert(1)</script></p>',
                             description_format="html")
    row = derive(postings_frame([_posting(title="Data Engineer", details=details)])).iloc[0]
    assert row["description_html"] == "<p>Hi</p>"
    assert (row["salary_annual_min"], row["salary_annual_max"], row["salary_period"]) == (124_800, 166_400, "hour")
    assert (row["workplace"], row["workplace_evidence"], row["workplace_regions"]) == ("hybrid", "field", None)
    assert row["category"] == "data"


def test_salary_text_and_escaped_html():
    details = PostingDetails(salary_text="$120k - $150k", description_raw="&lt;b&gt;Bold&lt;/b&gt;",
                             description_format="escaped_html")
    row = derive(postings_frame([_posting(details=details)])).iloc[0]
    assert (row["salary_annual_min"], row["salary_annual_max"]) == (120_000, 150_000)
    assert row["description_html"] == "<b>Bold</b>"


def test_malformed_details_are_unknown_not_errors():
    details = PostingDetails(salary_text="competitive", region_restrictions="not json", tags="{oops")
    row = derive(postings_frame([_posting(company="", title="???", location="", details=details)])).iloc[0]
    assert row["salary_annual_min"] is None
    assert row["company_key"] is None and row["dedupe_key"] is None  # no company: nothing to merge on
    assert row["category"] == "other"


def test_equal_inputs_derive_equal_rows_and_keys_match_across_spellings():
    frame = postings_frame([_posting("1"), _posting("2", title="Sr. Backend Engineer", company="ACME",
                                                    location="Remote (US)")])
    derived = derive(frame)
    assert derived["dedupe_key"].nunique() == 1
    assert derive(frame.iloc[:0]).empty
